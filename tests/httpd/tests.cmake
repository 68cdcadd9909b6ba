# The HTTP server transport: in-process server on free ports, raw-socket
# clients on a second thread (bad input, limits, timeouts, pipelining, SSE,
# graceful stop).
find_package(Threads REQUIRED)
shield_c_test(http_server_test ${CMAKE_CURRENT_LIST_DIR}/http_server_test.c TIMEOUT 120)
target_link_libraries(http_server_test PRIVATE Threads::Threads)
# The log buffer the API turns on: lines appear while the loop waits, none lost
# at exit, none repeated by a fork.
shield_c_test(httpd_log_buffer_test ${CMAKE_CURRENT_LIST_DIR}/log_buffer_test.c)
