"""``python -m litellm_claude_code.testing`` runs the fake Anthropic server."""

import sys

from litellm_claude_code.testing.fake_anthropic import main

sys.exit(main())
