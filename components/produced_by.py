"""Which component output an artifact is, written on the artifact, for the resolvers on Vertex.

A resolver's channel names its producer (`producer_component_id`, `output_key`), and the local runner
queries ML Metadata by it. TFX's Kubeflow V2 compiler drops both (a LatestArtifactStrategy query is
`schema_title=... AND state=LIVE`), and Vertex ML Metadata's filters have no producer field: on Vertex the
last accepted statistics would be any ExampleStatistics (StatisticsGen's too), a blessing any blessed
ModelBlessing in the metadata store. So the components a resolver reads stamp their output with
`produced_by`, and the compiled query asks for it (pipelines/vertex.py).
"""

PRODUCED_BY = "produced_by"


def stamp(artifact, component_id: str, output_key: str) -> None:
    artifact.set_string_custom_property(PRODUCED_BY, f"{component_id}.{output_key}")


def clause(component_id: str, output_key: str) -> str:
    """The Vertex ML Metadata filter clause that matches what `stamp` wrote."""
    return f'metadata.{PRODUCED_BY}.string_value="{component_id}.{output_key}"'
