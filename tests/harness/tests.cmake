# The test harness itself (tests/harness/): its servers answer, stop and restart
# with their data; with-servers.sh passes the status on and leaves nothing
# behind after a normal exit, SIGTERM or SIGKILL; tests/e2e/lib.sh works
# against the real runtime.
shield_test(NAME harness.servers COMMAND ${CMAKE_CURRENT_LIST_DIR}/servers_test.sh SERVERS TIMEOUT 60)
shield_test(NAME harness.lifecycle COMMAND ${CMAKE_CURRENT_LIST_DIR}/lifecycle_test.sh TIMEOUT 120)
shield_test(NAME harness.e2e_lib COMMAND ${CMAKE_CURRENT_LIST_DIR}/e2e_lib_test.sh SERVERS TIMEOUT 60)
