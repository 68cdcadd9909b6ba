# The LightRAG processing scripts (issue 7): backends against a scripted HTTP
# stand-in, the offline pipeline against PostgreSQL, and the pool end to end.
find_program(SHIELD_PYTHON python3 REQUIRED)
set(_pl ${CMAKE_CURRENT_LIST_DIR})
shield_test(NAME pipeline.backends SERVERS
  COMMAND env SHIELD_TEST_FAKE_KEY=sk-test $<TARGET_FILE:shield-runtime> --config ${_pl}/pipeline.cfg.lua
    run ${_pl}/backends_test.lua)
shield_test(NAME pipeline.offline SERVERS
  COMMAND $<TARGET_FILE:shield-runtime> --config ${_pl}/pipeline.cfg.lua run ${_pl}/offline_test.lua)
shield_test(NAME pipeline.e2e_offline SERVERS TIMEOUT 300
  COMMAND ${SHIELD_PYTHON} ${_pl}/e2e_offline_test.py)
shield_test(NAME pipeline.e2e_services SERVERS TIMEOUT 400
  COMMAND ${SHIELD_PYTHON} ${_pl}/e2e_services_test.py)
