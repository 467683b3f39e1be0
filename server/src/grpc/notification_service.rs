//! `monitor.v1.NotificationService` over [`ChannelCatalog`].

use monitor_proto::v1::{
    CreateNotificationChannelRequest, CreateNotificationChannelResponse, DeleteNotificationChannelRequest,
    DeleteNotificationChannelResponse, GetNotificationChannelRequest, GetNotificationChannelResponse,
    ListNotificationChannelsRequest, ListNotificationChannelsResponse, ListNotificationDeliveriesRequest,
    ListNotificationDeliveriesResponse, TestNotificationChannelRequest, TestNotificationChannelResponse,
    UpdateNotificationChannelRequest, UpdateNotificationChannelResponse,
    notification_service_server::NotificationService,
};
use tonic::{Request, Response, Status};

use crate::notify::ChannelCatalog;

/// The gRPC face of the channel catalog.
pub struct NotificationServiceImpl {
    catalog: ChannelCatalog,
}

impl NotificationServiceImpl {
    pub fn new(catalog: ChannelCatalog) -> Self {
        NotificationServiceImpl { catalog }
    }
}

#[tonic::async_trait]
impl NotificationService for NotificationServiceImpl {
    async fn create_notification_channel(
        &self,
        request: Request<CreateNotificationChannelRequest>,
    ) -> Result<Response<CreateNotificationChannelResponse>, Status> {
        let channel = self.catalog.create(request.into_inner()).await?;
        Ok(Response::new(CreateNotificationChannelResponse {
            channel: Some(channel),
        }))
    }

    async fn get_notification_channel(
        &self,
        request: Request<GetNotificationChannelRequest>,
    ) -> Result<Response<GetNotificationChannelResponse>, Status> {
        let channel = self.catalog.get(&request.into_inner().id).await?;
        Ok(Response::new(GetNotificationChannelResponse { channel: Some(channel) }))
    }

    async fn list_notification_channels(
        &self,
        request: Request<ListNotificationChannelsRequest>,
    ) -> Result<Response<ListNotificationChannelsResponse>, Status> {
        Ok(Response::new(self.catalog.list(request.into_inner()).await?))
    }

    async fn update_notification_channel(
        &self,
        request: Request<UpdateNotificationChannelRequest>,
    ) -> Result<Response<UpdateNotificationChannelResponse>, Status> {
        let channel = self.catalog.update(request.into_inner()).await?;
        Ok(Response::new(UpdateNotificationChannelResponse {
            channel: Some(channel),
        }))
    }

    async fn delete_notification_channel(
        &self,
        request: Request<DeleteNotificationChannelRequest>,
    ) -> Result<Response<DeleteNotificationChannelResponse>, Status> {
        self.catalog.delete(request.into_inner()).await?;
        Ok(Response::new(DeleteNotificationChannelResponse {}))
    }

    async fn test_notification_channel(
        &self,
        request: Request<TestNotificationChannelRequest>,
    ) -> Result<Response<TestNotificationChannelResponse>, Status> {
        let result = self.catalog.test(&request.into_inner().id).await?;
        Ok(Response::new(TestNotificationChannelResponse { result: Some(result) }))
    }

    async fn list_notification_deliveries(
        &self,
        request: Request<ListNotificationDeliveriesRequest>,
    ) -> Result<Response<ListNotificationDeliveriesResponse>, Status> {
        Ok(Response::new(self.catalog.deliveries(request.into_inner()).await?))
    }
}
