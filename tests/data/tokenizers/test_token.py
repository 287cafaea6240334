import copy
import dataclasses
import pickle
from dataclasses import fields

import pytest

from keel.data.tokenizers.token import SharedToken, Token, TokenCache


def test_token_fields_match_the_contract():
    assert [f.name for f in fields(Token)] == ["text", "idx", "idx_end", "text_id", "type_id"]


def test_token_defaults_are_none_and_str_is_text():
    token = Token("word")
    assert (token.idx, token.idx_end, token.text_id, token.type_id) == (None, None, None, None)
    assert str(token) == "word"


def test_token_is_slotted():
    token = Token("word", 0, 4)
    with pytest.raises(AttributeError):
        token.extra = 1  # type: ignore[attr-defined]
    assert not hasattr(token, "__dict__")
    # Tokens are mutable so ids can be set after tokenization.
    token.text_id = 7
    assert token == Token("word", 0, 4, 7)


def test_shared_token_equals_token_and_is_read_only():
    shared = SharedToken("word")
    assert shared == Token("word") and Token("word") == shared
    assert shared != Token("word", 0, 4)
    assert isinstance(shared, Token)
    assert repr(shared) == repr(Token("word"))
    with pytest.raises(AttributeError, match="read-only"):
        shared.text_id = 3
    with pytest.raises(AttributeError, match="read-only"):
        del shared.text


def test_shared_token_copies_and_pickles():
    shared = SharedToken("word", text_id=2)
    assert copy.copy(shared) is shared and copy.deepcopy(shared) is shared
    restored = pickle.loads(pickle.dumps(shared))
    assert restored == shared and isinstance(restored, SharedToken)
    changed = dataclasses.replace(shared, text_id=5)
    assert changed == Token("word", text_id=5)


def test_token_cache_shares_and_is_bounded():
    cache = TokenCache(max_size=2)
    first = cache["a"]
    assert cache["a"] is first and first == Token("a")
    cache["b"]
    cache["c"]  # full: starts over
    assert len(cache) == 1 and cache["a"] is not first
