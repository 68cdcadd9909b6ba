# The PostgreSQL pool (runtime/pg.c) and shield.pg, against the harness' server.
shield_c_test(pg_stmt_test ${CMAKE_CURRENT_LIST_DIR}/pg_stmt_test.c)
shield_c_test(pg_pool_test ${CMAKE_CURRENT_LIST_DIR}/pg_pool_test.c SERVERS)
foreach(name types concurrency transaction timeout restart prepared)
  shield_test(NAME pg.${name} SERVERS
    COMMAND $<TARGET_FILE:shield-runtime> --config ${CMAKE_CURRENT_LIST_DIR}/pg.cfg.lua
      run ${CMAKE_CURRENT_LIST_DIR}/${name}_test.lua)
endforeach()
shield_test(NAME pg.teardown COMMAND ${CMAKE_CURRENT_LIST_DIR}/teardown.sh SERVERS TIMEOUT 30)
