"""Accounts in the Python client and CLI, against the real server binary
(an account database in a scratch directory; accounts made with the
server's own `switchboard user add`).

    python3 -m unittest discover -s clients/python -v
"""

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from switchboard_client import ResponseError, SwitchboardClient  # noqa: E402
from test_chat import Cli, Server, server_binary  # noqa: E402

PASSWORD = "correct horse battery"


class AccountTests(unittest.TestCase):
    """One server with a database file (stored private messages need one),
    --auth optional, and a moderator made with `switchboard user add`."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="sb-py-accounts-")
        cls.db = os.path.join(cls.dir, "chat.db")
        cls.password_file = cls.file("password", PASSWORD + "\n")
        cls.wrong_file = cls.file("wrong", "not the password\n")
        subprocess.run(
            [server_binary(), "user", "add", "py-mod", "--password-file", cls.password_file,
             "--role", "moderator", "--db", cls.db],
            check=True, capture_output=True, timeout=30,
        )
        cls.server = Server("--rate", "0", "--db", cls.db, "--auth", "optional")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def file(cls, name, text):
        path = os.path.join(cls.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def cli(self, *args):
        return subprocess.run(
            [sys.executable, os.path.join(HERE, "chat.py"), self.server.url] + list(args),
            capture_output=True, text=True, timeout=60,
        )

    def guest(self, name):
        client = SwitchboardClient.connect(self.server.url, name=name)
        self.addCleanup(client.close)
        return client

    def moderator(self):
        mod = SwitchboardClient.connect(self.server.url)
        self.addCleanup(mod.close)
        mod.login("py-mod", PASSWORD)
        welcome = mod.wait_welcome()
        self.assertEqual((welcome["name"], welcome["guest"], welcome["roles"]), ("py-mod", False, ["moderator"]))
        return mod

    def test_register_then_the_token_file_signs_in_on_the_next_run(self):
        token_file = os.path.join(self.dir, "py-reg.token")
        first = self.cli("--user", "py-reg", "--password-file", self.password_file, "--register",
                         "--token-file", token_file, "--send", "/users", "--expect", "signed in as py-reg (user)",
                         "--expect", "users: ")
        self.assertEqual(first.returncode, 0, first.stdout + first.stderr)
        self.assertTrue(os.path.exists(token_file), first.stdout)
        self.assertEqual(stat.S_IMODE(os.stat(token_file).st_mode), 0o600)
        with open(token_file) as f:
            token = f.read().strip()
        self.assertTrue(token)

        # No password this time: the token alone signs in, as the same name.
        again = self.cli("--token-file", token_file, "--send", "/users", "--expect", "signed in as py-reg (user)")
        self.assertEqual(again.returncode, 0, again.stdout + again.stderr)
        self.assertNotIn("connected as", again.stdout)
        self.assertNotIn("could not be used", again.stdout)

        # The library sees the same: a token sign-in is the account.
        with open(token_file) as f:
            client = SwitchboardClient.connect(self.server.url, token=f.read().strip())
        self.addCleanup(client.close)
        self.assertIsNone(client.auth_error)
        self.assertEqual((client.name, client.guest), ("py-reg", False))
        me = client.request("whoami")
        self.assertEqual((me["name"], me["guest"], me["roles"]), ("py-reg", False, ["user"]))

        # A token that is no longer good is dropped from the file.
        bad_file = self.file("bad.token", "not-a-token\n")
        bad = self.cli("--token-file", bad_file, "--name", "py-after-bad", "--expect", "connected as py-after-bad")
        self.assertEqual(bad.returncode, 0, bad.stdout + bad.stderr)
        self.assertIn("bad_token", bad.stdout)
        self.assertFalse(os.path.exists(bad_file))

    def test_a_wrong_password_is_bad_credentials(self):
        result = self.cli("--user", "py-mod", "--password-file", self.wrong_file, "--expect", "signed in")
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn("sign-in failed: bad_credentials", result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        # The same answer for a name that has no account.
        client = self.guest("py-wrong")
        with self.assertRaises(ResponseError) as err:
            client.login("py-nobody-at-all", PASSWORD)
        self.assertEqual(err.exception.code, "bad_credentials")
        self.assertTrue(client.guest)

    def test_a_private_message_to_an_offline_account_arrives_late(self):
        bob = SwitchboardClient.connect(self.server.url)
        bob.register("py-late", PASSWORD)
        bob.wait_welcome()
        bob.close()
        sender = self.guest("py-sender")
        deadline = time.monotonic() + 10
        while "py-late" in sender.request("users")["users"] and time.monotonic() < deadline:
            time.sleep(0.05)  # bob's leave has been handled
        sender.direct("py-late", "call me when you are back", id="d")
        ack = sender.wait_for(lambda e: e.get("id") == "d" and e["type"] in ("ack", "error"))
        self.assertEqual(ack["type"], "ack", ack)
        self.assertEqual(ack.get("stored"), ["py-late"], ack)

        result = self.cli("--user", "py-late", "--password-file", self.password_file,
                          "--send", "/with py-sender",
                          "--expect", "(delivered late) py-sender -> py-late: call me when you are back",
                          "--expect", "conversation with py-sender: 1 messages")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        # Once only: it waited, it was delivered, it is no longer waiting.
        self.assertEqual(result.stdout.count("(delivered late)"), 1, result.stdout)
        again = self.cli("--user", "py-late", "--password-file", self.password_file,
                         "--expect", "signed in as py-late", "--linger", "0.5")
        self.assertEqual(again.returncode, 0, again.stdout + again.stderr)
        time.sleep(0.5)
        self.assertNotIn("(delivered late)", again.stdout)

    def test_a_kicked_cli_says_why_and_does_not_reconnect(self):
        cli = Cli(self, self.server.url, "--user", "py-kicked", "--register", "--password-file", self.password_file)
        cli.wait_for("signed in as py-kicked")
        mod = self.moderator()
        self.assertIn("py-kicked", mod.request("users")["users"])
        self.assertEqual(mod.request("kick", {"name": "py-kicked", "reason": "spamming"}), {})
        cli.wait_for(r"^\* removed by a moderator: spamming$")
        self.assertEqual(cli.proc.wait(timeout=15), 1, cli.transcript())
        self.assertEqual(cli.count("reconnect"), 0, cli.transcript())
        self.assertNotIn("Traceback", cli.transcript())
        leave = mod.wait_for(lambda e: e["type"] == "presence" and e["event"] == "leave" and e["name"] == "py-kicked")
        self.assertIn("spamming", leave.get("reason", ""), leave)
        time.sleep(1.5)  # a reconnect (250 ms backoff) would be back by now
        self.assertNotIn("py-kicked", mod.request("users")["users"])


if __name__ == "__main__":
    unittest.main()
