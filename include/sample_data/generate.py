"""Deterministic generator of the bundled SYNTHETIC sample data (Lean daily format).

``python -m include.sample_data.generate [--out include/sample_data/lean]`` rewrites the files byte for byte
(fixed seed, pure numpy; NYSE sessions from include.trading_calendar). The tickers (ZZSA..ZZSH) are invented.
ZZSC has a synthetic 2:1 split on 2020-06-15: its zip holds raw prices (halved from that day) and its
factor file carries split factor 0.5 up to 2020-06-12, so Lean-style adjustment is exercised.
"""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

import numpy as np

from include.lean_local.sessions import nyse_sessions

SEED = 20190102
START, END = 20190102, 20211231
# ticker: (annual drift, annual volatility, start price)
TICKERS: dict[str, tuple[float, float, float]] = {
    "ZZSA": (0.18, 0.22, 50.0),
    "ZZSB": (0.05, 0.15, 80.0),
    "ZZSC": (0.30, 0.35, 120.0),
    "ZZSD": (-0.05, 0.25, 40.0),
    "ZZSE": (0.10, 0.30, 25.0),
    "ZZSF": (0.22, 0.40, 15.0),
    "ZZSG": (0.00, 0.10, 100.0),
    "ZZSH": (0.12, 0.20, 60.0),
}
SPLIT_TICKER, SPLIT_DAY, SPLIT_LAST_PRE = "ZZSC", 20200615, 20200612
DEFAULT_OUT = Path(__file__).resolve().parent / "lean"


def _zip_bytes(name: str, text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, text)
    return buffer.getvalue()


def generate(out: Path = DEFAULT_OUT) -> list[Path]:
    sessions = np.asarray(nyse_sessions().days, dtype=np.int64)
    days = sessions[(sessions >= START) & (sessions <= END)]
    rng = np.random.default_rng(SEED)
    written: list[Path] = []
    daily = out / "equity" / "usa" / "daily"
    daily.mkdir(parents=True, exist_ok=True)
    n = days.shape[0]
    split_reference = 0.0
    for ticker, (mu, sigma, p0) in TICKERS.items():
        dt_ = 1 / 252
        rets = rng.normal((mu - 0.5 * sigma**2) * dt_, sigma * np.sqrt(dt_), n)
        close = p0 * np.exp(np.cumsum(rets))
        gap = rng.normal(0, sigma * np.sqrt(dt_) * 0.3, n)
        open_ = np.concatenate([[p0], close[:-1]]) * np.exp(gap)
        spread = np.abs(rng.normal(0, sigma * np.sqrt(dt_) * 0.5, n))
        high = np.maximum(open_, close) * (1 + spread)
        low = np.minimum(open_, close) * (1 - spread)
        volume: np.ndarray = np.asarray(rng.integers(200_000, 2_000_000, n))
        if ticker == SPLIT_TICKER:
            post = days >= SPLIT_DAY
            open_, high, low, close = (np.where(post, a / 2, a) for a in (open_, high, low, close))
            volume = np.where(post, volume * 2, volume)
            # the factor file's reference price: the raw close before the split, as in Lean's files
            split_reference = float(np.round(close[days == SPLIT_LAST_PRE][0], 4))
        scale = lambda a: np.round(a * 10000).astype(np.int64)  # noqa: E731
        o, h, lo, c = scale(open_), scale(high), scale(low), scale(close)
        lines = [f"{d} 00:00,{o[i]},{h[i]},{lo[i]},{c[i]},{volume[i]}" for i, d in enumerate(days.tolist())]
        path = daily / f"{ticker.lower()}.zip"
        path.write_bytes(_zip_bytes(f"{ticker.lower()}.csv", "\n".join(lines) + "\n"))
        written.append(path)
    maps = out / "equity" / "usa" / "map_files"
    factors = out / "equity" / "usa" / "factor_files"
    maps.mkdir(parents=True, exist_ok=True)
    factors.mkdir(parents=True, exist_ok=True)
    t = SPLIT_TICKER.lower()
    (maps / f"{t}.csv").write_text(f"{START},{t},Q\n20501231,{t},Q\n")
    (factors / f"{t}.csv").write_text(
        f"{START},1,0.5,1\n{SPLIT_LAST_PRE},1,0.5,{split_reference:.4f}\n20501231,1,1,0\n"
    )
    written += [maps / f"{t}.csv", factors / f"{t}.csv"]
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    for path in generate(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
