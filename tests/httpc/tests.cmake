# The HTTP client (runtime/http_client.c) and shield.http, against the fake AI
# server (tests/fakes/fake_ai.py) that with-fake.sh starts on a free port; and
# the fake server's own formats.
set(HTTPC_WITH_FAKE ${CMAKE_CURRENT_LIST_DIR}/with-fake.sh)
add_executable(http_client_test ${CMAKE_CURRENT_LIST_DIR}/http_client_test.c)
target_link_libraries(http_client_test PRIVATE shield_core)
target_include_directories(http_client_test PRIVATE ${CMAKE_SOURCE_DIR}/tests/c)
shield_test(NAME httpc.client COMMAND ${HTTPC_WITH_FAKE} $<TARGET_FILE:http_client_test> TIMEOUT 60)
foreach(name basic errors load)
  shield_test(NAME httpc.${name} TIMEOUT 90
    COMMAND ${HTTPC_WITH_FAKE} $<TARGET_FILE:shield-runtime> --config ${CMAKE_CURRENT_LIST_DIR}/httpc.cfg.lua
      run ${CMAKE_CURRENT_LIST_DIR}/${name}_test.lua)
endforeach()
shield_test(NAME httpc.fakes COMMAND python3 ${CMAKE_SOURCE_DIR}/tests/fakes/fake_ai_test.py TIMEOUT 60)
shield_test(NAME httpc.mixed SERVERS TIMEOUT 120
  COMMAND ${HTTPC_WITH_FAKE} $<TARGET_FILE:shield-runtime> --config ${CMAKE_CURRENT_LIST_DIR}/httpc.cfg.lua
    run ${CMAKE_CURRENT_LIST_DIR}/mixed_test.lua)
