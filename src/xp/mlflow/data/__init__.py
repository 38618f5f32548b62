"""``mlflow.data``: datasets for ``log_input`` (``from_pandas``, ``from_numpy``), with
MLflow's names, digests, sources, schemas and profiles, so a dataset logged through
``xp.mlflow`` reads the same as one logged through MLflow."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from typing import Any

from xp.interop.mlflow_entities import Dataset as DatasetEntity

MAX_ROWS = 10000


def _md5(elements: list[Any]) -> str:
    md5 = hashlib.md5(usedforsecurity=False)
    for element in elements:
        md5.update(element)
    return md5.hexdigest()[:8]


def pandas_digest(df: Any) -> str:
    """MLflow's digest of a DataFrame: md5 over the hashed string and numeric columns of the
    first 10,000 rows, the row count and the column names; 8 hex characters."""
    import numpy as np
    import pandas as pd

    head = df.head(MAX_ROWS)
    strings = head.columns[df.map(lambda v: type(v) is str).all(axis=0)]
    numbers = head.select_dtypes(include=[np.number]).columns
    head = head[strings.union(numbers)]
    return _md5(
        [pd.util.hash_pandas_object(head).values, np.int64(len(df))]
        + [str(c).encode() for c in df.columns]
    )


def numpy_digest(features: Any, targets: Any = None) -> str:
    import numpy as np
    import pandas as pd

    parts: list[Any] = []

    def add(array: Any) -> None:
        flat = np.asarray(array).flatten()[:MAX_ROWS]
        try:
            parts.append(pd.util.hash_array(flat))
        except TypeError:
            parts.append(np.int64(flat.size))
        parts.extend(np.int64(x) for x in np.asarray(array).shape)

    for item in (features, targets):
        if item is None:
            continue
        if isinstance(item, dict):
            for key in sorted(item):
                add(item[key])
        else:
            add(item)
    return _md5(parts)


_COLUMN_TYPES = {
    "b": "boolean",
    "i": "long",
    "u": "long",
    "f": "double",
    "M": "datetime",
    "O": "string",
    "U": "string",
    "S": "binary",
}


def _column_type(series: Any) -> str:
    kind = series.dtype.kind
    if kind in "iu" and series.dtype.itemsize <= 4:
        return "integer"
    if kind == "f" and series.dtype.itemsize <= 4:
        return "float"
    if kind == "O" and len(series) and all(isinstance(v, bytes) for v in series):
        return "binary"
    if kind == "O" and len(series) and all(isinstance(v, bool) for v in series):
        return "boolean"
    return _COLUMN_TYPES.get(kind, "string")


def colspec(df: Any) -> list[dict[str, Any]]:
    return [
        {"type": _column_type(df[c]), "name": str(c), "required": not bool(df[c].isna().any())}
        for c in df.columns
    ]


def tensorspec(array: Any) -> str:
    import numpy as np

    array = np.asarray(array)
    shape = [-1, *array.shape[1:]]
    return json.dumps(
        [{"type": "tensor", "tensor-spec": {"dtype": str(array.dtype), "shape": shape}}]
    )


class DatasetSource:
    """Where a dataset came from: ``local`` / ``s3`` / ``http`` / ``code``..."""

    def __init__(self, source_type: str, spec: dict[str, Any]) -> None:
        self._type = source_type
        self._spec = spec

    def _get_source_type(self) -> str:
        return self._type

    def to_json(self) -> str:
        return json.dumps(self._spec)

    def to_dict(self) -> dict[str, Any]:
        return dict(self._spec)

    @property
    def uri(self) -> str | None:
        value = self._spec.get("uri") or self._spec.get("url")
        return None if value is None else str(value)


def resolve_source(source: Any) -> DatasetSource:
    if isinstance(source, DatasetSource):
        return source
    if source is None:
        from xp.record.context import host_user

        main = sys.argv[0] if sys.argv and sys.argv[0] else "<console>"
        return DatasetSource(
            "code",
            {
                "tags": {
                    "mlflow.user": host_user()[0],
                    "mlflow.source.name": main,
                    "mlflow.source.type": "LOCAL",
                }
            },
        )
    text = os.fspath(source)
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme in ("http", "https"):
        return DatasetSource("http", {"url": text})
    if scheme in ("s3", "gs", "gcs", "hdfs", "dbfs", "abfss", "wasbs"):
        return DatasetSource(scheme, {"uri": text})
    return DatasetSource("local", {"uri": text})


class Dataset:
    """A dataset to log with ``log_input``: name, digest, source, schema and profile."""

    def __init__(self, source: Any, name: str | None = None, digest: str | None = None) -> None:
        self._source = resolve_source(source)
        self._name = name or "dataset"
        self._digest = digest or self._compute_digest()

    def _compute_digest(self) -> str:
        raise NotImplementedError

    @property
    def name(self) -> str:
        return self._name

    @property
    def digest(self) -> str:
        return self._digest

    @property
    def source(self) -> DatasetSource:
        return self._source

    @property
    def schema(self) -> Any:
        return None

    @property
    def profile(self) -> Any:
        return None

    def _schema_json(self) -> str | None:
        return None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "digest": self.digest,
            "source": self._source.to_json(),
            "source_type": self._source._get_source_type(),
        }
        schema = self._schema_json()
        if schema is not None:
            out["schema"] = schema
        if self.profile is not None:
            out["profile"] = json.dumps(self.profile)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def _to_mlflow_entity(self) -> DatasetEntity:
        d = self.to_dict()
        return DatasetEntity(
            name=d["name"],
            digest=d["digest"],
            source_type=d["source_type"],
            source=d["source"],
            schema=d.get("schema"),
            profile=d.get("profile"),
        )


class PandasDataset(Dataset):
    def __init__(
        self,
        df: Any,
        source: Any = None,
        targets: str | None = None,
        name: str | None = None,
        digest: str | None = None,
        predictions: str | None = None,
    ) -> None:
        for column, what in ((targets, "targets"), (predictions, "predictions")):
            if column is not None and column not in df.columns:
                from xp.errors import MlflowException

                raise MlflowException(
                    f"The specified pandas DataFrame does not contain the specified {what}"
                    f" column '{column}'.",
                    "INVALID_PARAMETER_VALUE",
                )
        self._df = df
        self._targets = targets
        self._predictions = predictions
        super().__init__(source, name, digest)

    def _compute_digest(self) -> str:
        return pandas_digest(self._df)

    @property
    def df(self) -> Any:
        return self._df

    @property
    def targets(self) -> str | None:
        return self._targets

    @property
    def predictions(self) -> str | None:
        return self._predictions

    @property
    def schema(self) -> list[dict[str, Any]]:
        return colspec(self._df)

    @property
    def profile(self) -> dict[str, int]:
        return {"num_rows": len(self._df), "num_elements": int(self._df.size)}

    def _schema_json(self) -> str:
        return json.dumps({"mlflow_colspec": self.schema})


class NumpyDataset(Dataset):
    def __init__(
        self,
        features: Any,
        source: Any = None,
        targets: Any = None,
        name: str | None = None,
        digest: str | None = None,
    ) -> None:
        self._features = features
        self._targets = targets
        super().__init__(source, name, digest)

    def _compute_digest(self) -> str:
        return numpy_digest(self._features, self._targets)

    @property
    def features(self) -> Any:
        return self._features

    @property
    def targets(self) -> Any:
        return self._targets

    @property
    def profile(self) -> dict[str, Any]:
        import numpy as np

        out: dict[str, Any] = {}
        for what, array in (("features", self._features), ("targets", self._targets)):
            if array is None:
                continue
            arr = np.asarray(array)
            out[f"{what}_shape"] = list(arr.shape)
            out[f"{what}_size"] = int(arr.size)
            out[f"{what}_nbytes"] = int(arr.nbytes)
        return out

    def _schema_json(self) -> str:
        spec = {  # MLflow writes "targets": null when there are none
            "features": tensorspec(self._features),
            "targets": None if self._targets is None else tensorspec(self._targets),
        }
        return json.dumps({"mlflow_tensorspec": spec})


def from_pandas(
    df: Any,
    source: Any = None,
    targets: str | None = None,
    name: str | None = None,
    digest: str | None = None,
    predictions: str | None = None,
) -> PandasDataset:
    return PandasDataset(df, source, targets, name, digest, predictions)


def from_numpy(
    features: Any,
    source: Any = None,
    targets: Any = None,
    name: str | None = None,
    digest: str | None = None,
) -> NumpyDataset:
    return NumpyDataset(features, source, targets, name, digest)


__all__ = ["Dataset", "DatasetSource", "NumpyDataset", "PandasDataset", "from_numpy", "from_pandas"]
