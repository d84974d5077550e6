"""The SDK's public API is a contract: `public-api.txt` holds it, and a change to it is made
deliberately (`python3 scripts/public_api.py > public-api.txt`, then review the diff)."""

import importlib.util
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class PublicApi(unittest.TestCase):
    def test_the_public_api_is_the_checked_in_one(self):
        spec = importlib.util.spec_from_file_location("public_api", ROOT / "scripts" / "public_api.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        self.assertEqual(
            module.public_api(),
            (ROOT / "public-api.txt").read_text(),
            "the public API changed: if deliberately, `python3 scripts/public_api.py > public-api.txt`",
        )


if __name__ == "__main__":
    unittest.main()
