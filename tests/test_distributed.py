"""Dask execution: a LocalCluster of 2 worker processes gives exactly the local results."""

import os
import signal

import numpy as np
import pytest

import fastprop as fp

distributed = pytest.importorskip("distributed")

GRID_FIELDS = ("q_star", "chi_1", "c_star", "chi_c", "chi_q", "xi_q", "xi_c", "status")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        env={"NUMBA_NUM_THREADS": "1"},
    )
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def test_grid_equals_the_local_grid(client):
    sw, sb = np.linspace(0.2, 4, 37), np.linspace(0, 2, 9)
    g = fp.meanfield_grid("tanh", sw, sb, client=client, target="auto")
    ref = fp.meanfield_grid("tanh", sw, sb, target="cpu")
    for k in GRID_FIELDS:
        np.testing.assert_array_equal(getattr(g, k), getattr(ref, k))
    assert g.meta == ref.meta and g.target == "parallel"


def test_edge_equals_the_local_edge(client):
    sb = np.linspace(0, 2, 21)
    np.testing.assert_array_equal(fp.edge_of_chaos("erf", sb, client=client), fp.edge_of_chaos("erf", sb))


def test_registered_activation_travels_to_the_workers(client):
    import math

    fp.register_activation(
        "dist_tanh",
        math.tanh,
        lambda h: 1 - math.tanh(h) ** 2,
        lambda h: -2 * math.tanh(h) * (1 - math.tanh(h) ** 2),
        overwrite=True,
    )
    g = fp.meanfield_grid("dist_tanh", [1.5, 2.5], [0.0, 0.5], client=client)
    np.testing.assert_array_equal(g.q_star, fp.meanfield_grid("dist_tanh", [1.5, 2.5], [0.0, 0.5]).q_star)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"width": 10, "depth": 20, "layers": [5, 20]},
        {"width": 6, "depth": 8, "activation": "tanh", "sigma_w": 1.3, "sigma_b": 0.2, "method": "dense"},
        {"width": 5, "depth": 4, "activation": "relu", "sigma_w": 2**0.5, "keep_norms": True},
    ],
)
def test_chains_equal_the_local_run(client, kwargs):
    n = 200_003
    r = fp.simulate_chains(n_chains=n, first_chain=17, seed=4, client=client, **kwargs)
    ref = fp.simulate_chains(n_chains=n, first_chain=17, seed=4, target="cpu", **kwargs)
    assert r.identical(ref)
    assert len(client.nthreads()) == 2


def test_jacobians_equal_the_local_run(client):
    kw = dict(width=4, depth=5, activation="tanh", sigma_w=1.4, sigma_b=0.2, layers=[2, 5], seed=3, first_chain=9)
    r = fp.simulate_jacobians(n_chains=3001, client=client, **kw)
    assert r.identical(fp.simulate_jacobians(n_chains=3001, target="cpu", **kw))


@pytest.mark.parametrize(
    "kw",
    [dict(width=4, depth=10, threshold=100.0, rel_error=0.01),
     dict(width=4, depth=6, threshold=1.9, activation="tanh", sigma_w=1.5, sigma_b=0.3, rel_error=0.3, particles=50,
          moves=2)],  # fmt: skip
)
def test_rare_tail_equals_the_local_run(client, kw):
    """Tilted chain ranges and splitting runs on the workers: the local estimate, bit for bit."""
    e = fp.rare_tail(client=client, seed=2, **kw)
    assert e == fp.rare_tail(target="cpu", seed=2, **kw)
    assert e.n > 2 * 16384 if e.method == "tilt" else e.diagnostics["runs"] >= 32


def test_cli_scheduler_option(client, tmp_path):
    from fastprop.cli import main

    out = tmp_path / "t.npz"
    address = client.scheduler.address
    args = ["tail", "--chains", "150000", "--depth", "3", "9", "--scheduler", address]
    rc = main([*args, "--out", str(out), "--png=none", "--quiet"])
    assert rc == 0
    ref = fp.simulate_chains(10, 9, 150000, layers=[3, 9], target="cpu")
    assert fp.ChainResult.load(out).identical(ref)


class _KillAWorker:
    """After the first finished task, SIGKILL the process of a worker that is busy."""

    def __init__(self, client):
        self.client = client
        self.killed = None

    def update(self, n):
        if self.killed is None:
            busy = {w: keys for w, keys in self.client.processing().items() if keys}
            self.killed = max(busy, key=lambda w: len(busy[w])) if busy else ""
            if self.killed:
                pid = self.client.run(os.getpid, workers=[self.killed])[self.killed]
                os.kill(pid, signal.SIGKILL)  # the nanny starts a fresh worker process


def test_nngp_equals_the_local_run(client):
    rng = np.random.default_rng(6)
    X = rng.normal(size=(40, 3)) * np.exp(rng.uniform(-3, 3, size=(40, 1)))
    X[1] = 2 * X[0]
    kw = dict(depth=3, activation="tanh", sigma_w=1.5, sigma_b=0.3, layers=[0, 2, 3])
    r = fp.nngp(X, client=client, progress=False, **kw)
    ref = fp.nngp(X, target="cpu", **kw)
    assert r.identical(ref) and np.array_equal(r.exact_pairs, ref.exact_pairs) and ref.exact_pairs[1:].min() > 0
    e = fp.simulate_kernels(X[:5], 6, 3, 40, "tanh", 1.5, 0.3, client=client)
    assert e.identical(fp.simulate_kernels(X[:5], 6, 3, 40, "tanh", 1.5, 0.3))


def test_a_worker_lost_mid_run_neither_loses_nor_double_counts(client):
    kwargs = {"width": 10, "depth": 30, "layers": [10, 30], "method": "dense", "seed": 8}
    n = 2**19
    fp.simulate_chains(n_chains=1000, client=client, **kwargs)  # compile on both workers
    bar = _KillAWorker(client)
    r = fp.simulate_chains(n_chains=n, client=client, progress=bar, **kwargs)
    assert bar.killed, "no task was running when the first one finished"
    assert r.identical(fp.simulate_chains(n_chains=n, target="cpu", **kwargs))
    client.wait_for_workers(2, timeout=60)


def test_a_cancelled_run_raises_cleanly(client, monkeypatch):
    """Tasks cancelled behind the run's back (as ``client.restart()`` or another
    client's ``cancel(force=True)`` would) raise Cancelled. The cancel is issued
    directly on the run's futures: no worker restarts to wait for under load."""
    submitted = []
    real_submit = client.submit

    def spy(*args, **kwargs):
        submitted.append(real_submit(*args, **kwargs))
        return submitted[-1]

    class _CancelEverything:
        def update(self, n):
            client.cancel(submitted, force=True)

    monkeypatch.setattr(client, "submit", spy)
    with pytest.raises(fp.distributed.Cancelled, match="cancelled"):
        fp.simulate_chains(10, 30, 2**19, method="dense", client=client, progress=_CancelEverything())
    monkeypatch.undo()
    # the client is still usable afterwards
    assert fp.simulate_chains(3, 2, 1000, client=client).identical(fp.simulate_chains(3, 2, 1000))


def test_interrupting_a_run_cancels_its_tasks(client, monkeypatch):
    """Ctrl-C during a distributed run cancels every task it submitted (checked on the
    futures themselves: no waiting on the scheduler's bookkeeping, which lags under load)."""

    class _CtrlC:
        def update(self, n):
            raise KeyboardInterrupt

    asked = []
    real_cancel = client.cancel

    def spy(futures, *args, **kwargs):
        asked.extend(futures)
        return real_cancel(futures, *args, **kwargs)

    monkeypatch.setattr(client, "cancel", spy)
    with pytest.raises(KeyboardInterrupt):
        fp.simulate_chains(10, 30, 2**19, method="dense", seed=21, client=client, progress=_CtrlC())
    assert len({f.key for f in asked}) >= 2, "the interrupted run cancelled nothing"
    assert all(f.status in ("cancelled", "finished") for f in asked), [f.status for f in asked]
    assert sum(f.status != "cancelled" for f in asked) <= 1  # only the one whose result had arrived


def test_bad_client_arguments():
    with pytest.raises(ConnectionError, match="cannot connect to the Dask scheduler"):
        fp.distributed.resolve_client("tcp://127.0.0.1:1", timeout=2)
    with pytest.raises(TypeError, match="client must be"):
        fp.meanfield_grid("relu", [1.0], [0.0], client=42)
    with pytest.raises(ValueError, match="unknown target"):
        fp.simulate_chains(3, 2, 10, client="tcp://127.0.0.1:1", target="gpu")
    with pytest.raises(ValueError, match="batch_size"):  # checked here, before connecting
        fp.simulate_chains(3, 2, 10, client="tcp://127.0.0.1:1", batch_size=0)
    with pytest.raises(TypeError, match="progress"):
        fp.meanfield_grid("relu", [1.0], [0.0], progress="yes")


def test_cli_bad_scheduler_address(tmp_path, capsys):
    from fastprop.cli import main

    args = ["grid", "--sigma-w", "1,2", "--sigma-b", "0", "--scheduler", "tcp://127.0.0.1:1"]
    rc = main([*args, "--out", str(tmp_path / "g.npz")])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot connect to the Dask scheduler" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "g.npz").exists()
