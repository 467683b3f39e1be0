//! `monitor.v1.JobService` over [`JobCatalog`].

use monitor_proto::v1::{
    CreateJobRequest, CreateJobResponse, DeleteJobRequest, DeleteJobResponse, GetJobRequest, GetJobResponse,
    GetJobStatusRequest, GetJobStatusResponse, ListJobSummariesRequest, ListJobSummariesResponse, ListJobsRequest,
    ListJobsResponse, QueryMetricsRequest, QueryMetricsResponse, StartJobRequest, StartJobResponse, StopJobRequest,
    StopJobResponse, UpdateJobRequest, UpdateJobResponse, job_service_server::JobService,
};
use tonic::{Request, Response, Status};

use crate::jobs::JobCatalog;

/// The gRPC face of the job catalog.
pub struct JobServiceImpl {
    catalog: JobCatalog,
}

impl JobServiceImpl {
    pub fn new(catalog: JobCatalog) -> Self {
        JobServiceImpl { catalog }
    }
}

#[tonic::async_trait]
impl JobService for JobServiceImpl {
    async fn create_job(&self, request: Request<CreateJobRequest>) -> Result<Response<CreateJobResponse>, Status> {
        let job = self.catalog.create(request.into_inner()).await?;
        Ok(Response::new(CreateJobResponse { job: Some(job) }))
    }

    async fn get_job(&self, request: Request<GetJobRequest>) -> Result<Response<GetJobResponse>, Status> {
        let job = self.catalog.get(request.into_inner()).await?;
        Ok(Response::new(GetJobResponse { job: Some(job) }))
    }

    async fn list_jobs(&self, request: Request<ListJobsRequest>) -> Result<Response<ListJobsResponse>, Status> {
        Ok(Response::new(self.catalog.list(request.into_inner()).await?))
    }

    async fn update_job(&self, request: Request<UpdateJobRequest>) -> Result<Response<UpdateJobResponse>, Status> {
        let job = self.catalog.update(request.into_inner()).await?;
        Ok(Response::new(UpdateJobResponse { job: Some(job) }))
    }

    async fn delete_job(&self, request: Request<DeleteJobRequest>) -> Result<Response<DeleteJobResponse>, Status> {
        self.catalog.delete(request.into_inner()).await?;
        Ok(Response::new(DeleteJobResponse {}))
    }

    async fn start_job(&self, request: Request<StartJobRequest>) -> Result<Response<StartJobResponse>, Status> {
        let change = self.catalog.set_running(&request.into_inner().id, true).await?;
        Ok(Response::new(StartJobResponse {
            job: Some(change.job),
            changed: change.changed,
            message: change.message,
        }))
    }

    async fn stop_job(&self, request: Request<StopJobRequest>) -> Result<Response<StopJobResponse>, Status> {
        let change = self.catalog.set_running(&request.into_inner().id, false).await?;
        Ok(Response::new(StopJobResponse {
            job: Some(change.job),
            changed: change.changed,
            message: change.message,
        }))
    }

    async fn get_job_status(
        &self,
        request: Request<GetJobStatusRequest>,
    ) -> Result<Response<GetJobStatusResponse>, Status> {
        let status = self.catalog.status(&request.into_inner().id).await?;
        Ok(Response::new(GetJobStatusResponse { status: Some(status) }))
    }

    async fn query_metrics(
        &self,
        request: Request<QueryMetricsRequest>,
    ) -> Result<Response<QueryMetricsResponse>, Status> {
        Ok(Response::new(self.catalog.query_metrics(request.into_inner()).await?))
    }

    async fn list_job_summaries(
        &self,
        request: Request<ListJobSummariesRequest>,
    ) -> Result<Response<ListJobSummariesResponse>, Status> {
        // The same filters and paging as ListJobs.
        let ListJobSummariesRequest {
            page_size,
            page_token,
            state,
            label_selector,
            name_contains,
        } = request.into_inner();
        let page = ListJobsRequest {
            page_size,
            page_token,
            state,
            label_selector,
            name_contains,
        };
        Ok(Response::new(self.catalog.list_summaries(page).await?))
    }
}
