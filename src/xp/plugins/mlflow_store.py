"""MLflow's tracking store over xp runs: ``MLFLOW_TRACKING_URI=xp:`` (the working directory's
repository) or ``xp:/path/to/repo``.

Every call goes to the same backend ``xp.mlflow`` uses (``xp.interop.mlflow_runs``), so a
run logged through MLflow is an ordinary xp run: ``xp show``, ``xp diff`` and ``git push``
see it. MLflow caches one store per URI and shares it between threads (the UI server's), so
writes are serialised here.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

from mlflow.entities import ViewType
from mlflow.store.entities.paged_list import PagedList
from mlflow.store.tracking.abstract_store import AbstractStore

from xp.interop import mlflow_entities as E
from xp.interop.mlflow_runs import backend_for, mlflow_tags
from xp.plugins import mlflow_convert as C
from xp.plugins.mlflow_convert import mlflow_errors


class XpTrackingStore(AbstractStore):
    def __init__(self, store_uri: str | None = None, artifact_uri: str | None = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        path = urlparse(store_uri or "").path or None
        with mlflow_errors():
            self._b = backend_for(path)
        self._lock = threading.RLock()

    # -- experiments --------------------------------------------------------------------------
    def search_experiments(
        self,
        view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int | None = 1000,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        page_token: str | None = None,
        **_: Any,
    ) -> PagedList[Any]:
        with mlflow_errors():
            found = self._b.search_experiments(
                view_type, max_results, filter_string, order_by, page_token
            )
        return PagedList([C.experiment(e) for e in found], found.token)

    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: Any = None, **_: Any
    ) -> str:
        with self._lock, mlflow_errors():
            return self._b.create_experiment(name, artifact_location, tags)

    def get_experiment(self, experiment_id: str) -> Any:
        with mlflow_errors():
            return C.experiment(self._b.get_experiment(experiment_id))

    def get_experiment_by_name(self, experiment_name: str) -> Any:
        with mlflow_errors():
            found = self._b.get_experiment_by_name(experiment_name)
        return None if found is None else C.experiment(found)

    def delete_experiment(self, experiment_id: str) -> None:
        with self._lock, mlflow_errors():
            self._b.delete_experiment(experiment_id)

    def restore_experiment(self, experiment_id: str) -> None:
        with self._lock, mlflow_errors():
            self._b.restore_experiment(experiment_id)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        with self._lock, mlflow_errors():
            self._b.rename_experiment(experiment_id, new_name)

    def set_experiment_tag(self, experiment_id: str, tag: Any) -> None:
        with self._lock, mlflow_errors():
            self._b.set_experiment_tag(experiment_id, tag.key, tag.value)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        with self._lock, mlflow_errors():
            self._b.delete_experiment_tag(experiment_id, key)

    def filter_active_experiment_ids(self, experiment_ids: list[str]) -> list[str]:
        with mlflow_errors():
            entries = self._b.experiments()
        return [
            e
            for e in experiment_ids
            if str(e) in entries and entries[str(e)].lifecycle_stage == "active"
        ]

    # -- runs ---------------------------------------------------------------------------------
    def get_run(self, run_id: str) -> Any:
        with mlflow_errors():
            return C.run(self._b.get_run(run_id))

    def create_run(
        self,
        experiment_id: str,
        user_id: str | None,
        start_time: int | None,
        tags: Sequence[Any] | None,
        run_name: str | None,
    ) -> Any:
        with self._lock, mlflow_errors():
            run = self._b.create_run(
                experiment_id, user_id=user_id, start_time=start_time, tags=tags, run_name=run_name
            )
            return C.run(self._b.get_run(run.id))

    def update_run_info(
        self, run_id: str, run_status: Any, end_time: int | None, run_name: str | None
    ) -> Any:
        status = None if run_status is None else C.status_name(run_status)
        if status not in (None, "RUNNING", "SCHEDULED"):
            from xp.plugins.mlflow_artifacts import flush_run

            flush_run(run_id)  # outside the lock: the queue's threads may need the store
        with self._lock, mlflow_errors():
            return C.run_info(self._b.update_run_info(run_id, status, end_time, run_name))

    def delete_run(self, run_id: str) -> None:
        with self._lock, mlflow_errors():
            self._b.delete_run(run_id)

    def restore_run(self, run_id: str) -> None:
        with self._lock, mlflow_errors():
            self._b.restore_run(run_id)

    def get_metric_history(
        self,
        run_id: str,
        metric_key: str,
        max_results: int | None = None,
        page_token: str | None = None,
    ) -> PagedList[Any]:
        from xp.interop import mlflow_search as S

        with mlflow_errors():
            points = self._b.get_metric_history(run_id, metric_key)
            page, token = S.paginate(points, max_results, page_token)
        return PagedList([C.metric(m) for m in page], token)

    def _search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None,
        run_view_type: int,
        max_results: int | None,
        order_by: Sequence[str] | None,
        page_token: str | None,
    ) -> tuple[list[Any], str | None]:
        with mlflow_errors():
            found = self._b.search_runs(
                list(experiment_ids),
                filter_string,
                run_view_type,
                max_results,
                order_by,
                page_token,
            )
        return [C.run(r) for r in found], found.token

    def log_batch(
        self, run_id: str, metrics: Sequence[Any], params: Sequence[Any], tags: Sequence[Any]
    ) -> None:
        with self._lock, mlflow_errors():
            self._b.log_batch(
                run_id,
                [C.own_metric(m) for m in metrics],
                [E.Param(p.key, p.value) for p in params],
                [E.RunTag(t.key, t.value) for t in tags],
            )

    def log_metric(self, run_id: str, metric: Any) -> None:
        with self._lock, mlflow_errors():
            self._b.log_batch(run_id, metrics=[C.own_metric(metric)], single=True)

    def log_param(self, run_id: str, param: Any) -> None:
        with self._lock, mlflow_errors():
            self._b.log_batch(run_id, params=[E.Param(param.key, param.value)], single=True)

    def set_tag(self, run_id: str, tag: Any) -> None:
        with self._lock, mlflow_errors():
            self._b.log_batch(run_id, tags=[E.RunTag(tag.key, tag.value)], single=True)

    def delete_tag(self, run_id: str, key: str) -> None:
        with self._lock, mlflow_errors():
            self._b.delete_tag(run_id, key)

    def log_inputs(
        self, run_id: str, datasets: Sequence[Any] | None = None, models: Any = None
    ) -> None:
        with self._lock, mlflow_errors():
            self._b.log_inputs(run_id, [C.own_dataset_input(d) for d in datasets or []])

    def log_outputs(self, run_id: str, models: Sequence[Any]) -> None:
        with self._lock, mlflow_errors():
            for model in models:
                self._b.set_model_step(run_id, model.model_id, int(model.step or 0))

    def link_traces_to_run(self, trace_ids: list[str], run_id: str) -> None:
        return None  # xp records no traces

    # -- logged models ------------------------------------------------------------------------
    def record_logged_model(self, run_id: str, mlflow_model: Any) -> None:
        with self._lock, mlflow_errors():
            self._b.record_logged_model(run_id, mlflow_model.get_tags_dict())

    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        source_run_id: str | None = None,
        tags: Sequence[Any] | None = None,
        params: Sequence[Any] | None = None,
        model_type: str | None = None,
        **_: Any,
    ) -> Any:
        with self._lock, mlflow_errors():
            model = self._b.create_logged_model(
                experiment_id,
                name,
                source_run_id,
                {t.key: t.value for t in tags or []},
                {p.key: p.value for p in params or []},
                model_type,
            )
        return C.logged_model(model)

    def finalize_logged_model(self, model_id: str, status: Any) -> Any:
        text = getattr(status, "value", status)
        with self._lock, mlflow_errors():
            return C.logged_model(self._b.finalize_logged_model(model_id, text))

    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> Any:
        with mlflow_errors():
            return C.logged_model(self._b.get_logged_model(model_id))

    def search_logged_models(
        self,
        experiment_ids: list[str],
        filter_string: str | None = None,
        datasets: Any = None,
        max_results: int | None = None,
        order_by: Any = None,
        page_token: str | None = None,
    ) -> PagedList[Any]:
        with mlflow_errors():
            found = self._b.search_logged_models(
                experiment_ids, filter_string, max_results, None, page_token
            )
        return PagedList([C.logged_model(m) for m in found], found.token)

    def set_logged_model_tags(self, model_id: str, tags: Sequence[Any]) -> None:
        with self._lock, mlflow_errors():
            self._b.set_logged_model_tags(model_id, {t.key: t.value for t in tags})

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        with self._lock, mlflow_errors():
            self._b.delete_logged_model_tag(model_id, key)

    def delete_logged_model(self, model_id: str) -> None:
        with self._lock, mlflow_errors():
            self._b.delete_logged_model(model_id)

    # -- what the UI asks for besides ---------------------------------------------------------
    def search_traces(self, *args: Any, **kwargs: Any) -> tuple[list[Any], None]:
        return [], None  # xp records no traces: the Traces tab shows none

    def _search_datasets(self, experiment_ids: list[str]) -> list[Any]:
        from mlflow.entities.dataset_summary import _DatasetSummary

        out: dict[tuple[str, str, str, str | None], Any] = {}
        with mlflow_errors():
            runs = self._b.search_runs(experiment_ids, "", ViewType.ACTIVE_ONLY, None)
        for r in runs:
            for d in r.inputs.dataset_inputs if r.inputs else []:
                context = next((t.value for t in d.tags if t.key == "mlflow.data.context"), None)
                key = (r.info.experiment_id, d.dataset.name, d.dataset.digest, context)
                out[key] = _DatasetSummary(*key)
        return list(out.values())


__all__ = ["XpTrackingStore", "mlflow_tags"]
