from reprozoo.eclips.benchmark import measure


def test_benchmark_reports_ratios():
    out = measure(quick=True, k=2, width=4, embed_dim=8, size=16, batch=8, mc_samples=2, macs=False)
    assert set(out["ratios"]) == {"ensemble_loop / single (latency)", "ensemble_vmap / ensemble_loop (latency)",
                                  "ensemble_grouped / ensemble_loop (latency)",
                                  "mc_dropout_T2 / deterministic (latency)"}
    assert all(v > 0 for v in out["ratios"].values())
    assert out["rows"][0]["params"] == 1_758 and out["rows"][1]["params"] == 2 * 1_758 + 2
