//! `monitor.v1.AdminService` over [`Admin`].

use monitor_proto::v1::{
    GetServerInfoRequest, GetServerInfoResponse, ResetDatabaseRequest, ResetDatabaseResponse,
    admin_service_server::AdminService,
};
use tonic::{Request, Response, Status};

use crate::admin::Admin;

/// The gRPC face of the admin operations.
pub struct AdminServiceImpl {
    admin: Admin,
}

impl AdminServiceImpl {
    pub fn new(admin: Admin) -> Self {
        AdminServiceImpl { admin }
    }
}

#[tonic::async_trait]
impl AdminService for AdminServiceImpl {
    async fn get_server_info(
        &self,
        _request: Request<GetServerInfoRequest>,
    ) -> Result<Response<GetServerInfoResponse>, Status> {
        Ok(Response::new(self.admin.info().await?))
    }

    async fn reset_database(
        &self,
        request: Request<ResetDatabaseRequest>,
    ) -> Result<Response<ResetDatabaseResponse>, Status> {
        Ok(Response::new(self.admin.reset(request.into_inner()).await?))
    }
}
