# The Ansible role orchestrator_workers (ansible/): syntax, lint, the systemd
# unit, and real runs against this machine with the harness' servers. Exit 77
# (ansible-playbook missing) marks the test skipped.
shield_test(NAME ansible.role COMMAND ${CMAKE_CURRENT_LIST_DIR}/role_test.sh SERVERS TIMEOUT 600)
set_tests_properties(ansible.role PROPERTIES SKIP_RETURN_CODE 77)
