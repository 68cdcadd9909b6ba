# The Redis client: its C layer against a real server (restart included), and
# the Lua binding through `shield-runtime run`.
shield_c_test(redis.client ${CMAKE_CURRENT_LIST_DIR}/redis_client_test.c SERVERS TIMEOUT 120)
shield_test(NAME redis.lua
  COMMAND $<TARGET_FILE:shield-runtime> --config ${CMAKE_CURRENT_LIST_DIR}/redis.cfg.lua
    run ${CMAKE_CURRENT_LIST_DIR}/redis_lua_test.lua
  SERVERS TIMEOUT 120)
