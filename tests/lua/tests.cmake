# Busted specs for lua/ (tests/spec/*_spec.lua), one ctest test per spec file
# so ctest's summary counts them. busted runs under LuaJIT: Debian's
# /usr/bin/busted defaults to Lua 5.2, and its --lua=luajit flag re-executes
# "luajit busted --ignore-lua <args>" through a shell string with the arguments
# unquoted (a ';' in --lpath would end the command), so we run that command
# directly. Exit status is busted's: non-zero on any failure or error.
find_program(SHIELD_LUAJIT luajit REQUIRED)
find_program(SHIELD_BUSTED busted REQUIRED)

file(GLOB SHIELD_LUA_SPECS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/spec/*_spec.lua)
foreach(spec ${SHIELD_LUA_SPECS})
  get_filename_component(spec_name ${spec} NAME_WE)
  shield_test(NAME lua_${spec_name}
    COMMAND ${SHIELD_LUAJIT} ${SHIELD_BUSTED} --ignore-lua
      "--lpath=${CMAKE_SOURCE_DIR}/lua/?.lua$<SEMICOLON>${CMAKE_SOURCE_DIR}/lua/?/init.lua"
      --output=plainTerminal --verbose ${spec}
    LABELS lua)
endforeach()
