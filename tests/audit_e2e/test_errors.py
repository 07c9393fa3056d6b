"""What the audit does when it cannot do its work: exit codes a script can act on (sysexits), and a message on stderr
that names the problem without ever quoting the token."""

from __future__ import annotations

from audit import EXIT_PERMISSION, EXIT_POLICY, EXIT_UNAVAILABLE, EXIT_USAGE
from conftest import harness


def assert_no_token(run, *tokens: str) -> None:
    for token in tokens:
        assert token not in run.stdout and token not in run.stderr, f"the token was printed\n{run.describe()}"
    assert run.stderr.strip(), f"a message on stderr\n{run.describe()}"


def test_a_token_the_homeserver_does_not_know_exits_77(auditor, tmp_path, admin):
    """A wrong token: exit 77, a message about the token, the token not in it."""
    wrong = "syt_YXVkaXRldXI_WrongWrongWrongWrong_1a2b3c"
    token_file = tmp_path / "wrong-token"
    token_file.write_text(wrong + "\n")
    run = auditor.run(token_file=token_file, parse=False, timeout_s=300)
    assert run.returncode == EXIT_PERMISSION, run.describe()
    assert "token" in run.stderr.lower(), run.describe()
    assert_no_token(run, wrong, admin.token)


def test_the_token_of_an_account_that_is_not_a_server_admin_exits_77(auditor, synapse, tmp_path):
    """A valid token whose account is no server administrator: exit 77, a message saying so, not the token."""
    reader = synapse.register("lecteur")
    token_file = tmp_path / "user-token"
    token_file.write_text(reader.token)
    run = auditor.run(token_file=token_file, parse=False, timeout_s=300)
    assert run.returncode == EXIT_PERMISSION, run.describe()
    assert "admin" in run.stderr.lower(), run.describe()
    assert_no_token(run, reader.token)


def test_a_homeserver_that_does_not_answer_exits_69(auditor, admin):
    """A closed port (no process listens): exit 69 once the retries are spent, the token not printed."""
    port = harness.free_port()
    run = auditor.run(homeserver=f"http://127.0.0.1:{port}", parse=False, timeout_s=600)
    assert run.returncode == EXIT_UNAVAILABLE, run.describe()
    assert_no_token(run, admin.token)


def test_a_missing_token_file_is_a_usage_error(auditor, tmp_path, admin):
    """`--admin-token-file` naming no file: exit 64, the path in the message."""
    missing = tmp_path / "no-such-token"
    run = auditor.run(token_file=missing, parse=False, timeout_s=120)
    assert run.returncode == EXIT_USAGE, run.describe()
    assert "no-such-token" in run.stderr, run.describe()


def test_acting_or_resuming_without_a_journal_is_a_usage_error(auditor, admin):
    """`--apply` and `--resume` need `--journal` (so that an interrupted run can neither act twice nor lose what it
    did): exit 64 before anything is read; so is an unknown format."""
    for args in (("--remediate", "redact-events", "--apply"), ("--resume",), ("--format", "yaml")):
        run = auditor.run(*args, parse=False, timeout_s=120)
        assert run.returncode == EXIT_USAGE, run.describe()


def test_a_policy_that_does_not_load_exits_65(auditor, policies, tmp_path, admin):
    """A policy directory with a rule naming an unknown role: exit 65, nothing read or done."""
    import shutil

    broken = tmp_path / "policies"
    shutil.copytree(policies, broken)
    with open(broken / "rules.csv", "a") as rules:
        rules.write("p, send.broken, send, r.role.extrenal, deny, EXTERNAL_IN_PUBLIC_ROOM\n")
    run = auditor.run(policies=broken, parse=False, timeout_s=120)
    assert run.returncode == EXIT_POLICY, run.describe()
    assert_no_token(run, admin.token)
