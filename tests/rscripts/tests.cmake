# The job system's atomic Redis scripts (lua/shield/redis/*.lua), driven with
# hiredis' synchronous API against the harness' Redis.
shield_c_test(rscripts_test ${CMAKE_CURRENT_LIST_DIR}/rscripts_test.c SERVERS)
target_sources(rscripts_test PRIVATE ${CMAKE_CURRENT_LIST_DIR}/rs_harness.c)
shield_c_test(rscripts_throughput ${CMAKE_CURRENT_LIST_DIR}/rscripts_throughput.c SERVERS TIMEOUT 300)
target_sources(rscripts_throughput PRIVATE ${CMAKE_CURRENT_LIST_DIR}/rs_harness.c)
