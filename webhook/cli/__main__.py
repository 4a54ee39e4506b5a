"""``python -m webhook.cli``: the same as the ``edgewarden`` script."""

from webhook.cli import main

main()
