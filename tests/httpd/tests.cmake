# The HTTP server transport: in-process server on free ports, raw-socket
# clients on a second thread (bad input, limits, timeouts, pipelining, SSE,
# graceful stop).
find_package(Threads REQUIRED)
shield_c_test(http_server_test ${CMAKE_CURRENT_LIST_DIR}/http_server_test.c TIMEOUT 120)
target_link_libraries(http_server_test PRIVATE Threads::Threads)
