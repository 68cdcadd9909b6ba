# Runtime foundation: configuration errors, supervisor and workers, light threads.
shield_test(NAME runtime.config_errors COMMAND ${CMAKE_CURRENT_LIST_DIR}/config_errors.sh)
shield_test(NAME runtime.supervisor COMMAND ${CMAKE_CURRENT_LIST_DIR}/supervisor.sh SERVERS TIMEOUT 120)
shield_test(NAME runtime.sched COMMAND $<TARGET_FILE:shield-runtime> --config ${CMAKE_SOURCE_DIR}/tests/runtime/run.cfg.lua
  run ${CMAKE_CURRENT_LIST_DIR}/sched_test.lua)
shield_test(NAME runtime.sd_notify COMMAND ${CMAKE_CURRENT_LIST_DIR}/sd_notify.sh SERVERS TIMEOUT 60)
shield_test(NAME runtime.run_and_log COMMAND ${CMAKE_CURRENT_LIST_DIR}/run_and_log.sh SERVERS)
shield_test(NAME runtime.json COMMAND $<TARGET_FILE:shield-runtime> --config ${CMAKE_SOURCE_DIR}/tests/runtime/run.cfg.lua
  run ${CMAKE_CURRENT_LIST_DIR}/json_test.lua)
shield_c_test(backoff_test ${CMAKE_CURRENT_LIST_DIR}/backoff_test.c)
shield_c_test(scoreboard_test ${CMAKE_CURRENT_LIST_DIR}/scoreboard_test.c)
