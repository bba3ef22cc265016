"""The Vertex AI Model Monitoring job equivalent to the local monitoring, from the same config.

Built offline with the SDK's own config objects (`aiplatform.model_monitoring`) and
returned as the CreateModelDeploymentMonitoringJobRequest the API would receive.
Vertex picks L-infinity for categorical and Jensen-Shannon for numeric features
itself; the per-feature thresholds are the config's for each kind.
"""

from __future__ import annotations

from google.cloud.aiplatform import model_monitoring
from google.cloud.aiplatform.compat.types import model_deployment_monitoring_job as gca_job
from google.cloud.aiplatform_v1.types import CreateModelDeploymentMonitoringJobRequest

from settings.config import Config


def thresholds(config: Config, categorical: set[str], kind: str) -> dict[str, float]:
    m = config.monitoring
    linf, js = (m.skew_linf, m.skew_js) if kind == "skew" else (m.drift_linf, m.drift_js)
    features = [f for f in config.features.inputs() if f not in m.exclude]
    return {f: (linf if f in categorical else js) for f in features}


def job_request(config: Config, endpoint: str, deployed_model_ids: list[str], training_data: str,
                categorical: set[str]) -> CreateModelDeploymentMonitoringJobRequest:  # fmt: skip
    """The request that creates the monitoring job on `endpoint` (projects/P/locations/L/endpoints/E)."""
    m = config.monitoring
    source_format = "bigquery" if training_data.startswith("bq://") else "csv"
    objective = model_monitoring.ObjectiveConfig(
        skew_detection_config=model_monitoring.SkewDetectionConfig(
            data_source=training_data,
            target_field=config.label,
            skew_thresholds=thresholds(config, categorical, "skew"),
            data_format=None if source_format == "bigquery" else "csv",
        ),
        drift_detection_config=model_monitoring.DriftDetectionConfig(
            drift_thresholds=thresholds(config, categorical, "drift")
        ),
    ).as_proto()
    job = gca_job.ModelDeploymentMonitoringJob(
        display_name=f"{config.pipeline.name}-monitoring",
        endpoint=endpoint,
        model_deployment_monitoring_objective_configs=[
            gca_job.ModelDeploymentMonitoringObjectiveConfig(deployed_model_id=i, objective_config=objective)
            for i in deployed_model_ids
        ],
        logging_sampling_strategy=model_monitoring.RandomSampleConfig(sample_rate=m.sample_rate).as_proto(),
        model_deployment_monitoring_schedule_config=model_monitoring.ScheduleConfig(
            monitor_interval=m.monitor_interval_hours
        ).as_proto(),
        model_monitoring_alert_config=model_monitoring.EmailAlertConfig(
            user_emails=list(m.alert_emails), enable_logging=True
        ).as_proto(),
    )
    if config.vertex and config.vertex.encryption_key:
        job.encryption_spec.kms_key_name = config.vertex.encryption_key
    parent = endpoint.split("/endpoints/")[0]
    return CreateModelDeploymentMonitoringJobRequest(parent=parent, model_deployment_monitoring_job=job)
