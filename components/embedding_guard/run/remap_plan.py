"""Adds each vocabulary feature's old rows to a run's plan, for VOCABULARY_REMAPPED.

The old rows come from the `baseline_transform_graph` when one is given, else
from the transform layer inside the `model`. Without either, nothing is compared.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from absl import logging

from embedding_guard.bounds.graph_derivation import DerivationKind
from embedding_guard.errors import InputError
from embedding_guard.verdict import remap_findings

if TYPE_CHECKING:
    from embedding_guard.bounds.transform_graph import TransformGraphInfo
    from embedding_guard.run.validation import Plan


def with_remaps(
    plan: Plan,
    graph: TransformGraphInfo | None,
    *,
    model: str | None,
    baseline_transform_graph: str | None,
    splits: Iterable[str],
    looked_up: Iterable[str] | None = None,
    option_names: Mapping[str, str] | None = None,
) -> Plan:
    """The plan with `remap` set on every vocabulary feature the old rows are known for.

    Args:
      plan: The run's plan.
      graph: The current transform graph; None when only a schema gives bounds.
      model: The model folder, when given.
      baseline_transform_graph: The transform graph an earlier model was trained
        with, when given; it wins over the model's own transform layer.
      splits: The validated splits, for a VOCABULARY_ORDER_UNKNOWN finding.
      looked_up: The features the given model looks up; None without a model.
        Only their rows matter to it, so only they are compared.
      option_names: Setting -> how the caller spells it.

    Raises:
      InputError: A baseline transform graph without a current one, or a
        baseline that is not a usable Transform output.
    """
    names = dict(option_names or {})
    if baseline_transform_graph is None and model is None:
        return plan
    setting = names.get("baseline_transform_graph", "baseline_transform_graph")
    if graph is None or not graph.derivations:
        if baseline_transform_graph is not None:
            raise InputError(
                f"{setting} {baseline_transform_graph!r} needs the current transform graph "
                f"to compare with, and none with a transform_fn was given; pass "
                f"{names.get('transform_graph', 'transform_graph')} too."
            )
        return plan
    from embedding_guard.bounds import model_analysis, remap_sources

    if baseline_transform_graph is not None:
        try:
            old = remap_sources.baseline_vocabularies(baseline_transform_graph)
        except InputError as error:
            # The message names the folder; say which input it was given as.
            raise InputError(f"{setting}: {error}") from None
    else:
        try:
            old = remap_sources.model_vocabularies(model_analysis.serving_model_dir(str(model)))
        except InputError as error:
            # The model's tables were read; only its own vocabularies are unusable, which
            # makes the order unknown, not the run impossible.
            old = remap_sources.OldVocabularies({}, str(model), f"its vocabularies: {error}")
    read = None if looked_up is None else set(looked_up)
    vocabulary_features = [
        b.feature
        for b in plan.bounds
        if (d := graph.derivations.get(b.feature)) is not None
        and d.kind is DerivationKind.VOCABULARY
        and (read is None or b.feature in read)
    ]
    if old.unknown_why:
        if not vocabulary_features:
            return plan
        return dataclasses.replace(
            plan,
            run_findings=plan.run_findings
            + tuple(
                remap_findings.order_unknown_findings(
                    splits, vocabulary_features, old.unknown_why, setting
                )
            ),
        )
    remaps = remap_sources.remaps(
        [b for b in plan.bounds if b.feature in set(vocabulary_features)], graph.derivations, old
    )
    if baseline_transform_graph is not None and vocabulary_features and not remaps:
        # Another pipeline's graph (a wrong Resolver) would leave the row order
        # unverified while the user believes it checked.
        theirs = sorted(
            feature
            for feature, derivation in old.derivations.items()
            if derivation.kind is DerivationKind.VOCABULARY
        )
        raise InputError(
            f"{setting} {baseline_transform_graph!r} has none of the vocabularies of the "
            f"checked features {sorted(vocabulary_features)!r} (it has {theirs!r}); pass the "
            "previous Transform's transform_graph of this pipeline."
        )
    for feature in vocabulary_features:
        if feature in remaps:
            remap = remaps[feature]
            logging.info(
                "%s: %d tokens moved, %d added, %d removed against %s.",
                feature,
                remap.num_moved,
                remap.num_added,
                remap.num_removed,
                remap.old_source,
            )
        else:
            logging.info("%s: not compared, %s makes it otherwise.", feature, old.source)
    return dataclasses.replace(
        plan,
        bounds=tuple(
            dataclasses.replace(b, remap=remaps[b.feature]) if b.feature in remaps else b
            for b in plan.bounds
        ),
    )
