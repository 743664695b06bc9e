"""Readable random run names, like "brave-otter-417", for runs created without one."""

from __future__ import annotations

import secrets

_ADJ = ("able", "amber", "bold", "brave", "bright", "calm", "clever", "crisp", "daring", "eager",
        "fair", "fast", "gentle", "glad", "grand", "happy", "keen", "kind", "lively", "lucid",
        "merry", "mighty", "neat", "noble", "polite", "proud", "quick", "quiet", "rapid", "sharp",
        "shiny", "smart", "steady", "sunny", "swift", "tidy", "vivid", "warm", "wise", "zesty")
_NOUN = ("ant", "badger", "bass", "bear", "bee", "cat", "crane", "deer", "dove", "eagle", "eel",
         "finch", "fox", "frog", "goat", "hare", "hawk", "heron", "ibis", "jay", "koala", "lark",
         "lion", "lynx", "mole", "moth", "newt", "owl", "otter", "panda", "puma", "quail", "seal",
         "shrew", "skunk", "snail", "swan", "toad", "trout", "wolf", "wren", "yak", "zebra")


def random_run_name() -> str:
    return f"{secrets.choice(_ADJ)}-{secrets.choice(_NOUN)}-{secrets.randbelow(1000)}"
