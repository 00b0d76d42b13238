"""Loading result files: every damaged, foreign or inconsistent file is one clear error."""

import json

import numpy as np
import pytest

import fastprop as fp
from fastprop.run.files import FileFormatError


@pytest.fixture(scope="module")
def chain_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("files") / "r.npz"
    fp.simulate_chains(3, 4, 1000, layers=[2, 4], target="cpu", seed=1).save(path)
    return path


@pytest.fixture(scope="module")
def grid_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("files") / "g.npz"
    fp.meanfield_grid("relu", [1.0, 2.0], [0.0, 0.1, 0.2], target="cpu").save(path)
    return path


def _rewrite(src, dst, info=None, **arrays):
    """A copy of the .npz ``src`` with ``info`` edited (a function of the dict) and arrays replaced."""
    with np.load(src) as data:
        content = {k: data[k] for k in data.files}
    record = json.loads(str(content["__info__"]))
    if info is not None:
        record = info(record)
    content["__info__"] = np.array(json.dumps(record))
    content.update(arrays)
    np.savez(dst, **content)
    return dst


def _chains(record, **changes):
    return {**record, **changes}


@pytest.mark.parametrize(
    "make, text",
    [
        (lambda src, p: p.write_bytes(b"not a zip at all"), "not a readable fastprop ChainResult file"),
        (lambda src, p: p.write_bytes(b""), "not a readable fastprop ChainResult file"),
        (lambda src, p: p.write_bytes(src.read_bytes()[: src.stat().st_size // 2]), "not a readable"),
        (lambda src, p: np.savez(p, __info__=np.array("{not json")), "not a readable"),
        (lambda src, p: np.savez(p, __info__=np.array("{}"), x=np.array([{"a": 1}], dtype=object)), "not a readable"),
        (lambda src, p: np.savez(p, x=np.arange(3)), "no __info__ record"),
        (lambda src, p: _rewrite(src, p, lambda r: _chains(r, format="fastprop.ChainResult/99")), "format version 99"),
        (lambda src, p: _rewrite(src, p, lambda r: _chains(r, format="fastprop.MeanFieldGrid/1")), "not a fastprop"),
        (lambda src, p: _rewrite(src, p, hist=np.zeros((2, 10), np.int64)), "'hist' has shape"),
        (lambda src, p: _rewrite(src, p, lambda r: _chains(r, chain_ranges=[[0, 5]])), "do not add up"),
        (lambda src, p: _rewrite(src, p, lambda r: _chains(r, chain_ranges=[[5, 0]])), "chain_ranges"),
        (lambda src, p: _rewrite(src, p, lambda r: _chains(r, chain_ranges="all")), "chain_ranges"),
        (lambda src, p: _rewrite(src, p, lambda r: _chains(r, params={**r["params"], "width": "ten"})), "'width'"),
        (lambda src, p: _rewrite(src, p, zeros=np.zeros(2)), "int64"),
        (lambda src, p: _rewrite(src, p, layers=np.array([4, 2])), "recorded layers"),
        (lambda src, p: _rewrite(src, p, above=np.full((2, 2), 5000, np.int64)), "threshold counts"),
        (lambda src, p: _rewrite(src, p, extra=np.zeros(3)), "unexpected arrays"),
    ],
)
def test_a_damaged_chain_file_is_one_clear_error(chain_file, tmp_path, make, text):
    path = tmp_path / "bad.npz"
    make(chain_file, path)
    with pytest.raises(FileFormatError, match=text) as info:
        fp.ChainResult.load(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_a_missing_file_a_directory_and_a_damaged_netcdf(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        fp.ChainResult.load(tmp_path / "none.npz")
    with pytest.raises(FileFormatError, match="directory"):
        fp.MeanFieldGrid.load(tmp_path)
    bad = tmp_path / "bad.nc"
    bad.write_bytes(b"CDF\x01 truncated")
    with pytest.raises(FileFormatError, match="not a readable fastprop MeanFieldGrid file"):
        fp.MeanFieldGrid.load(bad)


def test_a_damaged_grid_file_is_one_clear_error(grid_file, tmp_path):
    with pytest.raises(FileFormatError, match="'chi_1' has shape"):
        fp.MeanFieldGrid.load(_rewrite(grid_file, tmp_path / "a.npz", chi_1=np.zeros((2, 2))))
    with pytest.raises(FileFormatError, match="'status' is missing"):
        with np.load(grid_file) as data:
            content = {k: data[k] for k in data.files if k != "status"}
        np.savez(tmp_path / "b.npz", **content)
        fp.MeanFieldGrid.load(tmp_path / "b.npz")
    with pytest.raises(FileFormatError, match="not a fastprop MeanFieldGrid file"):
        fp.MeanFieldGrid.load(_rewrite(grid_file, tmp_path / "c.npz", lambda r: {**r, "format": "other/1"}))


def test_good_files_still_load_bit_for_bit(chain_file, grid_file):
    r = fp.ChainResult.load(chain_file)
    assert r.identical(fp.simulate_chains(3, 4, 1000, layers=[2, 4], target="cpu", seed=1))
    g = fp.MeanFieldGrid.load(grid_file)
    assert np.array_equal(g.q_star, fp.meanfield_grid("relu", [1.0, 2.0], [0.0, 0.1, 0.2], target="cpu").q_star)


def test_an_interrupted_write_raises_the_interrupt_and_leaves_the_old_file(tmp_path):
    """Ctrl-C inside np.savez can make zipfile's cleanup fail (a ValueError raised while the
    KeyboardInterrupt is handled): the interrupt is what comes out, the old file is intact and no
    temporary file is left (the CLI then checkpoints and exits with 130, not 2)."""
    from fastprop.run.files import atomic_write, save_npz

    path = tmp_path / "r.npz"
    save_npz(path, {"a": 1}, {"x": np.arange(3)})
    before = path.read_bytes()

    def interrupted(fh):
        try:
            fh.write(b"partial")
            raise KeyboardInterrupt
        finally:
            raise ValueError("Can't close the ZIP file while there is an open writing handle on it")

    from fastprop.run import files

    with pytest.raises(KeyboardInterrupt):
        files._write_atomically(path, ".npz", interrupted)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["r.npz"]
    with pytest.raises(ValueError, match="plain"):  # other errors pass unchanged

        def failing(fh):
            raise ValueError("plain")

        files._write_atomically(path, ".npz", failing)
    atomic_write(path, b"new")
    assert path.read_bytes() == b"new"
