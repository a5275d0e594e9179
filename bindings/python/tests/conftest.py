"""Shared by the tests of lstm.convert: the C library's network calls."""

import pytest

NETWORK_CALLS = ("lstm_network_load_buffer", "lstm_network_save_buffer", "lstm_network_infer")


@pytest.fixture
def network_ffi():
    """lstm._ffi, its library loaded, when that library has the network loader
    and inference (issue 23's C side); else the test is skipped, saying why."""
    from lstm import _ffi
    try:
        _ffi.lib()
    except ImportError as error:
        pytest.skip("no liblstm to run network files in: %s" % error)
    missing = [name for name in NETWORK_CALLS if _ffi.optional(name) is None]
    if missing:
        pytest.skip("the loaded liblstm %s (%s) lacks %s (the C network loader, issue 23)"
                    % (_ffi.version(), _ffi.library_path(), ", ".join(missing)))
    return _ffi
