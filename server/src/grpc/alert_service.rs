//! `monitor.v1.AlertService` over [`AlertCatalog`]. The caller's [`Actor`]
//! comes from the request's extensions, where the access middleware put it.

use monitor_proto::v1::{
    AcknowledgeIncidentRequest, AcknowledgeIncidentResponse, CreateAlertRuleRequest, CreateAlertRuleResponse,
    CreateSilenceRequest, CreateSilenceResponse, DeleteAlertRuleRequest, DeleteAlertRuleResponse, DeleteSilenceRequest,
    DeleteSilenceResponse, GetAlertRuleRequest, GetAlertRuleResponse, GetIncidentRequest, GetIncidentResponse,
    GetSilenceRequest, GetSilenceResponse, ListAlertRulesRequest, ListAlertRulesResponse, ListIncidentsRequest,
    ListIncidentsResponse, ListSilencesRequest, ListSilencesResponse, ResolveIncidentRequest, ResolveIncidentResponse,
    UpdateAlertRuleRequest, UpdateAlertRuleResponse, UpdateSilenceRequest, UpdateSilenceResponse,
    alert_service_server::AlertService,
};
use tonic::{Request, Response, Status};

use crate::{alerts::AlertCatalog, auth::Actor};

/// The gRPC face of the alert catalog.
pub struct AlertServiceImpl {
    catalog: AlertCatalog,
}

impl AlertServiceImpl {
    pub fn new(catalog: AlertCatalog) -> Self {
        AlertServiceImpl { catalog }
    }
}

/// Who the request acts as, and the request itself.
fn actor_and_message<T>(request: Request<T>) -> (Actor, T) {
    let actor = request
        .extensions()
        .get::<Actor>()
        .cloned()
        .unwrap_or_else(Actor::anonymous);
    (actor, request.into_inner())
}

#[tonic::async_trait]
impl AlertService for AlertServiceImpl {
    async fn create_alert_rule(
        &self,
        request: Request<CreateAlertRuleRequest>,
    ) -> Result<Response<CreateAlertRuleResponse>, Status> {
        let rule = self.catalog.create_rule(request.into_inner()).await?;
        Ok(Response::new(CreateAlertRuleResponse { rule: Some(rule) }))
    }

    async fn get_alert_rule(
        &self,
        request: Request<GetAlertRuleRequest>,
    ) -> Result<Response<GetAlertRuleResponse>, Status> {
        let rule = self.catalog.get_rule(&request.into_inner().id).await?;
        Ok(Response::new(GetAlertRuleResponse { rule: Some(rule) }))
    }

    async fn list_alert_rules(
        &self,
        request: Request<ListAlertRulesRequest>,
    ) -> Result<Response<ListAlertRulesResponse>, Status> {
        Ok(Response::new(self.catalog.list_rules(request.into_inner()).await?))
    }

    async fn update_alert_rule(
        &self,
        request: Request<UpdateAlertRuleRequest>,
    ) -> Result<Response<UpdateAlertRuleResponse>, Status> {
        let rule = self.catalog.update_rule(request.into_inner()).await?;
        Ok(Response::new(UpdateAlertRuleResponse { rule: Some(rule) }))
    }

    async fn delete_alert_rule(
        &self,
        request: Request<DeleteAlertRuleRequest>,
    ) -> Result<Response<DeleteAlertRuleResponse>, Status> {
        self.catalog.delete_rule(request.into_inner()).await?;
        Ok(Response::new(DeleteAlertRuleResponse {}))
    }

    async fn create_silence(
        &self,
        request: Request<CreateSilenceRequest>,
    ) -> Result<Response<CreateSilenceResponse>, Status> {
        let (actor, request) = actor_and_message(request);
        let silence = self.catalog.create_silence(request, &actor).await?;
        Ok(Response::new(CreateSilenceResponse { silence: Some(silence) }))
    }

    async fn get_silence(&self, request: Request<GetSilenceRequest>) -> Result<Response<GetSilenceResponse>, Status> {
        let silence = self.catalog.get_silence(&request.into_inner().id).await?;
        Ok(Response::new(GetSilenceResponse { silence: Some(silence) }))
    }

    async fn list_silences(
        &self,
        request: Request<ListSilencesRequest>,
    ) -> Result<Response<ListSilencesResponse>, Status> {
        Ok(Response::new(self.catalog.list_silences(request.into_inner()).await?))
    }

    async fn update_silence(
        &self,
        request: Request<UpdateSilenceRequest>,
    ) -> Result<Response<UpdateSilenceResponse>, Status> {
        let silence = self.catalog.update_silence(request.into_inner()).await?;
        Ok(Response::new(UpdateSilenceResponse { silence: Some(silence) }))
    }

    async fn delete_silence(
        &self,
        request: Request<DeleteSilenceRequest>,
    ) -> Result<Response<DeleteSilenceResponse>, Status> {
        self.catalog.delete_silence(request.into_inner()).await?;
        Ok(Response::new(DeleteSilenceResponse {}))
    }

    async fn list_incidents(
        &self,
        request: Request<ListIncidentsRequest>,
    ) -> Result<Response<ListIncidentsResponse>, Status> {
        Ok(Response::new(self.catalog.list_incidents(request.into_inner()).await?))
    }

    async fn get_incident(
        &self,
        request: Request<GetIncidentRequest>,
    ) -> Result<Response<GetIncidentResponse>, Status> {
        let incident = self.catalog.get_incident(request.into_inner()).await?;
        Ok(Response::new(GetIncidentResponse {
            incident: Some(incident),
        }))
    }

    async fn acknowledge_incident(
        &self,
        request: Request<AcknowledgeIncidentRequest>,
    ) -> Result<Response<AcknowledgeIncidentResponse>, Status> {
        let (actor, request) = actor_and_message(request);
        let change = self.catalog.acknowledge(&request.id, &request.comment, &actor).await?;
        Ok(Response::new(AcknowledgeIncidentResponse {
            incident: Some(change.incident),
            changed: change.changed,
        }))
    }

    async fn resolve_incident(
        &self,
        request: Request<ResolveIncidentRequest>,
    ) -> Result<Response<ResolveIncidentResponse>, Status> {
        let (actor, request) = actor_and_message(request);
        let change = self.catalog.resolve(&request.id, &request.comment, &actor).await?;
        Ok(Response::new(ResolveIncidentResponse {
            incident: Some(change.incident),
            changed: change.changed,
        }))
    }
}
