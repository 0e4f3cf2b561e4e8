"""The service key table's hand-over of wvds.ossl keys to the C fast path (FastKey), in the FIPS worker."""
import logging

from support.fips_process import in_fips_process

UID = 4242


def table_and_peer():
    from wvds.crypto_service import fastpath
    from wvds.crypto_service.config import parse as parse_config
    from wvds.crypto_service.keys import KeyTable
    from wvds.keystore.memory import MemoryKeyStore
    from wvds.peer import Peer
    fastpath.enable()
    cfg = parse_config({"socket": {"path": "/nonexistent/test.sock"}, "access": {"allow_uids": [UID]},
                        "keystore": {"backend": "memory"}}, "<test>")
    return KeyTable(MemoryKeyStore({"backend": "memory"}), cfg), Peer(1, UID, UID)


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@in_fips_process
def test_a_key_c_cannot_take_is_tried_once_and_logged_once():
    from wvds.crypto_service import keys
    from wvds.protocol.constants import Algorithm
    t, peer = table_and_peer()
    key = t.generate(peer, Algorithm.ML_DSA_44, 0, "refused")
    tries = []

    def refuse(*args):
        tries.append(args)
        raise RuntimeError("the C fast path refused the key")

    made, records, logger = keys.FastKey, Records(), logging.getLogger("wvds.keys")
    keys.FastKey = refuse
    logger.addHandler(records)
    try:
        assert [t.fast_key(key) for _ in range(5)] == [None] * 5  # each request is still served, in Python
    finally:
        keys.FastKey = made
        logger.removeHandler(records)
    assert len(tries) == 1
    assert records.messages == ["key not handed to the C fast path"]


@in_fips_process
def test_a_key_c_takes_is_made_once_and_not_after_its_deletion():
    from wvds.protocol.constants import Algorithm
    t, peer = table_and_peer()
    key = t.generate(peer, Algorithm.ML_DSA_44, 0, "taken")
    first = t.fast_key(key)
    assert first is not None and t.fast_key(key) is first
    t.delete(peer, key.key_id)
    assert t.fast_key(key) is None
