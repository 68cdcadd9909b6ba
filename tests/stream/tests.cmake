# The stream consumer with real processes and Redis (issue 4).
shield_test(NAME stream.consumer COMMAND ${CMAKE_CURRENT_LIST_DIR}/stream.sh SERVERS TIMEOUT 600)
