# The HTTP API end to end, with a Python client (http.client and raw sockets).
find_program(SHIELD_PYTHON python3 REQUIRED)
shield_test(NAME api.jobs COMMAND ${SHIELD_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/api_test.py SERVERS TIMEOUT 240)
shield_test(NAME api.events COMMAND ${SHIELD_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/events_test.py SERVERS TIMEOUT 240)
shield_test(NAME api.shaping COMMAND ${SHIELD_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/shaping_test.py SERVERS TIMEOUT 120)
shield_test(NAME api.sse_keepalive COMMAND ${SHIELD_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/sse_keepalive_test.py SERVERS TIMEOUT 90)
shield_test(NAME api.health_postgres COMMAND ${SHIELD_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/health_postgres_test.py SERVERS TIMEOUT 120)
shield_test(NAME api.metrics_refork COMMAND ${SHIELD_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/metrics_refork_test.py SERVERS TIMEOUT 120)
