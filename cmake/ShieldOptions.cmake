# Every build option of shield-runtime, in one place.
option(SHIELD_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
