# The benchmark command (issue 9) runs every scenario at small sizes against the
# built binary: the bench keeps working; its figures are not checked.
shield_test(NAME bench.smoke COMMAND ${CMAKE_CURRENT_LIST_DIR}/smoke.sh TIMEOUT 600 LABELS bench)
