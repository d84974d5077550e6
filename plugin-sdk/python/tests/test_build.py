"""`python -m kith_plugin.build` says what is wrong before it runs componentize-py."""

import tempfile
import unittest
from pathlib import Path

from kith_plugin import WIT_VERSION, build


class CheckManifest(unittest.TestCase):
    def check(self, manifest):
        with tempfile.TemporaryDirectory() as folder:
            if manifest is not None:
                (Path(folder) / "plugin.toml").write_text(manifest)
            with self.assertRaises(SystemExit) as raised:
                build.check_manifest(Path(folder))
            return str(raised.exception)

    def test_a_missing_manifest(self):
        self.assertIn("plugin.toml is missing", self.check(None))

    def test_a_manifest_that_is_not_toml(self):
        self.assertIn("plugin.toml:", self.check("id = \n"))

    def test_another_contract_version(self):
        message = self.check('id = "x"\nsdk_version = "1.2.0"\n')
        self.assertIn(f'set sdk_version = "{WIT_VERSION}"', message)

    def test_the_right_version_passes(self):
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "plugin.toml").write_text(f'id = "x"\nsdk_version = "{WIT_VERSION}"\n')
            build.check_manifest(Path(folder))

    def test_the_wit_is_the_checkouts(self):
        self.assertTrue((build.default_wit() / "plugin.wit").exists(), build.default_wit())


if __name__ == "__main__":
    unittest.main()
