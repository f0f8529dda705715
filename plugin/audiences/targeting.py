"""Which predictions an audience may use: they must exist in the workspace and be targetable.

Demo and preview predictions show analytics only (their scores are not refreshed), so anything
that would act on them — a preview, a segment, a host audience, a campaign — is refused.
"""
from __future__ import annotations

from sqlalchemy import Connection, Row, bindparam, select

from plugin.audiences import population
from plugin.audiences.schema import referenced_predictions, walk
from plugin.errors import Conflict, Forbidden, ValidationFailed
from plugin.store.tables import predictions

NOT_TARGETABLE = ("demo", "preview")


# Built once (every preview runs it); the erasure marker (the preview cache's key) rides along.
_PREDICTIONS = (
    select(predictions.c.id, predictions.c.name, predictions.c.status, predictions.c.goal_event,
           predictions.c.window_days, predictions.c.current_model_id, predictions.c.last_scored_at,
           predictions.c.categories,
           population.last_erasure().label("last_erasure"))
    .where(predictions.c.workspace_id == bindparam("workspace_id"),
           predictions.c.id.in_(bindparam("ids", expanding=True))))


def load_predictions(conn: Connection, workspace_id: int, node: dict, check_categories: bool = True) -> dict[int, Row]:
    """The predictions a parsed tree references, in tree order; an unknown one is a 400 at its path,
    and so is a category name its prediction's scheme does not have.

    A prediction of another workspace is "unknown" too: its existence is not revealed.
    """
    wanted = referenced_predictions(node)
    if not wanted:
        return {}
    rows = {row.id: row for row in conn.execute(_PREDICTIONS, {"workspace_id": workspace_id, "ids": list(wanted)})}
    missing = {path: [f"Prediction {pid} does not exist in this workspace."]
               for pid, paths in wanted.items() if pid not in rows for path in paths}
    if missing:
        raise ValidationFailed("the audience definition refers to unknown predictions",
                               code="unknown_prediction", details={"definition": missing})
    if check_categories:
        check_category_names(node, rows)
    return {pid: rows[pid] for pid in wanted}


def check_category_names(node: dict, rows: dict[int, Row]) -> None:
    """A category filter naming no category of its prediction's scheme would silently match
    nobody (names are case-sensitive: "high" is not "High"): a 400 naming the valid ones."""
    problems, valid_by_prediction = {}, {}
    for path, leaf in walk(node):
        if leaf["filter"] != "event_likelihood_category":
            continue
        valid = [band["name"] for band in (rows[leaf["prediction"]].categories or {}).get("bins", [])]
        unknown = [name for name in leaf["in"] if name not in valid]
        if unknown:
            problems[f"{path}.in" if path else "in"] = [
                f"Not a category of prediction {leaf['prediction']}: {', '.join(unknown)}; "
                f"its categories are {', '.join(valid)}."]
            valid_by_prediction[str(leaf["prediction"])] = valid
    if problems:
        names = "; ".join(f"prediction {pid}: {', '.join(v)}" for pid, v in valid_by_prediction.items())
        raise ValidationFailed(f"the audience names categories its prediction does not have (valid: {names})",
                               code="unknown_category",
                               details={"definition": problems, "valid_categories": valid_by_prediction})


def is_targetable(status: str) -> bool:
    """Whether `ensure_targetable` lets a prediction of this status through."""
    return status not in NOT_TARGETABLE and status != "archived"


def ensure_targetable(prediction: Row, path: str | None = None) -> None:
    """403 `prediction_not_targetable` for demo/preview, 409 `prediction_archived` for archived."""
    details = {"prediction_id": prediction.id, "name": prediction.name, "status": prediction.status}
    if path:
        details["path"] = path
    if prediction.status in NOT_TARGETABLE:
        raise Forbidden(f"prediction {prediction.name!r} ({prediction.id}) is a {prediction.status} "
                        "prediction: it shows analytics only and cannot be used for targeting",
                        code="prediction_not_targetable", details=details)
    if prediction.status == "archived":
        raise Conflict(f"prediction {prediction.name!r} ({prediction.id}) is archived; "
                       "restore it or choose another prediction", code="prediction_archived",
                       details=details)


def check_targetable(conn: Connection, workspace_id: int, node: dict) -> dict[int, Row]:
    """Load every prediction a parsed tree references and refuse the tree if one is not targetable.

    The call campaigns make too. Returns the predictions by id, in tree order.
    """
    found = load_predictions(conn, workspace_id, node, check_categories=False)
    paths = referenced_predictions(node)
    for pid, prediction in found.items():
        ensure_targetable(prediction, paths[pid][0])
    check_category_names(node, found)  # after: "not targetable" is the first thing to fix
    return found


def targetable_prediction(conn: Connection, workspace_id: int, prediction_id: int, field: str = "prediction") -> Row:
    """A prediction named directly (e.g. a campaign's), checked like one inside a tree.

    400 `unknown_prediction` (at `field`) if it is not the workspace's, then 403/409 as above.
    """
    node = {"filter": "event_likelihood_score", "prediction": prediction_id, "gte": 0}
    try:
        found = load_predictions(conn, workspace_id, node)
    except ValidationFailed as error:
        error.details = {field: [f"Prediction {prediction_id} does not exist in this workspace."]}
        raise
    prediction = found[prediction_id]
    ensure_targetable(prediction, field)
    return prediction
