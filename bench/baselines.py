"""The two classic baselines the quality benchmark measures us against, on the same purchases.

- BG/NBD (Fader, Hardie & Lee 2005), fitted with `lifetimes.BetaGeoFitter` on each customer's
  frequency (repeat purchase days), recency and age in days as of the as-of date. The chance of at
  least one purchase in the next t days is P(alive) · (1 − ((α + T) / (α + T + t))^(r + x)): a
  customer who is alive keeps a gamma-distributed purchase rate with posterior Gamma(r + x, α + T),
  and in BG/NBD a customer can only drop out right after a purchase, so a dead customer buys
  nothing and a live one buys nothing with probability E[e^(−λt)].
- LightGBM on recency, frequency, monetary value and age (RFM), trained on features one window
  before the as-of date with the window's outcome, then applied at the as-of date.
"""
from __future__ import annotations

import lightgbm as lgb
import numpy as np
from cdnow import DAY, Purchases


def rfm(purchases: Purchases, customers: np.ndarray, index: np.ndarray, as_of: int) -> tuple[np.ndarray, np.ndarray]:
    """(features, has_history) per customer as of `as_of`: recency, frequency, T (days), repeat
    purchase days, spend total and mean."""
    n = len(customers)
    past = purchases.ts <= as_of
    user, ts, dollars = index[past], purchases.ts[past], purchases.dollars[past]
    first = np.full(n, np.inf)
    last = np.full(n, -np.inf)
    np.minimum.at(first, user, ts)
    np.maximum.at(last, user, ts)
    day_keys = np.unique(user.astype(np.int64) * 100_000 + ts // DAY)
    days = np.bincount(day_keys // 100_000, minlength=n)
    spend = np.bincount(user, weights=dollars, minlength=n)
    orders = np.bincount(user, minlength=n)
    has = orders > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        matrix = np.column_stack([(as_of - last) / DAY, orders, (as_of - first) / DAY, np.maximum(days - 1, 0),
                                  spend, spend / np.maximum(orders, 1)])
    matrix[~has] = np.nan
    return matrix, has


def bought(purchases: Purchases, index: np.ndarray, n: int, start: int, end: int) -> np.ndarray:
    window = (purchases.ts > start) & (purchases.ts <= end)
    out = np.zeros(n, dtype=np.int8)
    out[index[window]] = 1
    return out


def bg_nbd(purchases: Purchases, customers: np.ndarray, index: np.ndarray, as_of: int, window_days: int) -> np.ndarray:
    """P(at least one purchase in (as_of, as_of + window]) per customer (NaN without history)."""
    from lifetimes import BetaGeoFitter
    matrix, has = rfm(purchases, customers, index, as_of)
    recency_age = matrix[has, 2] - matrix[has, 0]   # days from the first to the last purchase
    age, repeat = matrix[has, 2], matrix[has, 3]
    fitter = BetaGeoFitter(penalizer_coef=0.0)
    fitter.fit(repeat, recency_age, age)
    r, alpha = fitter.params_["r"], fitter.params_["alpha"]
    alive = np.asarray(fitter.conditional_probability_alive(repeat, recency_age, age), dtype=np.float64)
    out = np.full(len(customers), np.nan)
    out[has] = alive * (1.0 - ((alpha + age) / (alpha + age + window_days)) ** (r + repeat))
    return out


def lightgbm_rfm(purchases: Purchases, customers: np.ndarray, index: np.ndarray, as_of: int,
                 window_days: int) -> np.ndarray:
    """P(purchase in the next window) from a plain LightGBM on RFM features (NaN without history)."""
    n = len(customers)
    cutoff = as_of - window_days * DAY
    train_x, train_has = rfm(purchases, customers, index, cutoff)
    labels = bought(purchases, index, n, cutoff, as_of)
    params = {"objective": "binary", "learning_rate": 0.05, "num_leaves": 15, "min_data_in_leaf": 50,
              "seed": 7, "deterministic": True, "num_threads": 2, "verbose": -1}
    booster = lgb.train(params, lgb.Dataset(train_x[train_has], labels[train_has]), num_boost_round=200)
    x, has = rfm(purchases, customers, index, as_of)
    out = np.full(n, np.nan)
    out[has] = booster.predict(x[has])
    return out
