#!/bin/sh
# make demo: the bot on a throwaway homeserver, printed as a transcript.
cd "$(dirname "$0")/.." && exec /usr/bin/python3 tests/demo.py
