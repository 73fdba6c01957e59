//! Sessions, deputies, agencies, divisions and API keys: the directory this service owns and
//! publishes to the others.

use super::*;

impl App {
    pub async fn create_session(
        &self,
        p: &Principal,
        r: CreateSession,
    ) -> Result<SessionView, AppError> {
        policy::allow(p, Action::ManageDirectory)?;
        let s = Session::new(
            SessionId::new(),
            r.body,
            r.term,
            r.number,
            &r.name,
            r.opens_on,
            r.closes_on,
        )?;
        self.store().create_session(&s).await.map_err(|e| match e {
            StoreError::AlreadyExists(_) => AppError::new(
                ErrorCode::AlreadyExists,
                format!(
                    "session {} {}-{} already exists",
                    r.body_name(),
                    r.term,
                    r.number
                ),
            ),
            e => e.into(),
        })?;
        Ok((&s).into())
    }

    pub async fn list_sessions(&self, p: &Principal) -> Result<Vec<SessionView>, AppError> {
        policy::allow(p, Action::ReadDirectory)?;
        Ok(self
            .store()
            .list_sessions()
            .await?
            .iter()
            .map(SessionView::from)
            .collect())
    }

    pub async fn get_session(&self, p: &Principal, id: Uuid) -> Result<SessionView, AppError> {
        policy::allow(p, Action::ReadDirectory)?;
        Ok((&self.store().get_session(SessionId(id)).await?).into())
    }

    pub async fn create_deputy(
        &self,
        p: &Principal,
        r: CreateDeputy,
    ) -> Result<DeputyView, AppError> {
        policy::allow(p, Action::ManageDirectory)?;
        if r.name.trim().is_empty() || r.delegation.trim().is_empty() {
            return Err(AppError::invalid("name and delegation must not be empty"));
        }
        let d = Deputy {
            id: DeputyId::new(),
            name: r.name.trim().to_owned(),
            delegation: r.delegation.trim().to_owned(),
            contact: r.contact,
        };
        self.store().create_deputy(&d).await?;
        Ok((&d).into())
    }

    /// Every deputy (the office and inspectors).
    pub async fn list_deputies(&self, p: &Principal) -> Result<Vec<DeputyView>, AppError> {
        policy::allow(p, Action::ListDeputies)?;
        Ok(self
            .store()
            .list_deputies()
            .await?
            .iter()
            .map(DeputyView::from)
            .collect())
    }

    pub async fn get_deputy(&self, p: &Principal, id: Uuid) -> Result<DeputyView, AppError> {
        policy::allow(p, Action::ReadDeputy(DeputyId(id)))
            .map_err(|_| AppError::not_found(format!("deputy {id} not found")))?;
        Ok((&self.store().get_deputy(DeputyId(id)).await?).into())
    }

    pub async fn create_agency(
        &self,
        p: &Principal,
        r: CreateAgency,
    ) -> Result<AgencyView, AppError> {
        policy::allow(p, Action::ManageDirectory)?;
        if r.name.trim().is_empty() {
            return Err(AppError::invalid("name must not be empty"));
        }
        let a = Agency {
            id: AgencyId::new(),
            name: r.name.trim().to_owned(),
            assigning_office: false,
        };
        self.store().create_agency(&a).await.map_err(|e| match e {
            StoreError::AlreadyExists(_) => AppError::new(
                ErrorCode::AlreadyExists,
                format!("an agency named `{}` already exists", a.name),
            ),
            e => e.into(),
        })?;
        Ok((&a).into())
    }

    pub async fn list_agencies(&self, p: &Principal) -> Result<Vec<AgencyView>, AppError> {
        policy::allow(p, Action::ReadDirectory)?;
        Ok(self
            .store()
            .list_agencies()
            .await?
            .iter()
            .map(AgencyView::from)
            .collect())
    }

    pub async fn get_agency(&self, p: &Principal, id: Uuid) -> Result<AgencyView, AppError> {
        policy::allow(p, Action::ReadDirectory)?;
        Ok((&self.store().get_agency(AgencyId(id)).await?).into())
    }

    pub async fn create_division(
        &self,
        p: &Principal,
        agency: Uuid,
        r: CreateDivision,
    ) -> Result<DivisionView, AppError> {
        policy::allow(p, Action::ManageDivisions(AgencyId(agency)))?;
        if r.name.trim().is_empty() {
            return Err(AppError::invalid("name must not be empty"));
        }
        let d = Division {
            id: DivisionId::new(),
            agency_id: AgencyId(agency),
            name: r.name.trim().to_owned(),
        };
        self.store().create_division(&d).await?;
        Ok((&d).into())
    }

    pub async fn list_divisions(
        &self,
        p: &Principal,
        agency: Uuid,
    ) -> Result<Vec<DivisionView>, AppError> {
        policy::allow(p, Action::ReadDirectory)?;
        self.store().get_agency(AgencyId(agency)).await?;
        Ok(self
            .store()
            .list_divisions(AgencyId(agency))
            .await?
            .iter()
            .map(DivisionView::from)
            .collect())
    }

    /// An agency's approval chain for its replies (内部审批); empty when none is set.
    pub async fn approval_chain(
        &self,
        p: &Principal,
        agency: Uuid,
    ) -> Result<ApprovalChainView, AppError> {
        policy::allow(p, Action::ReadDirectory)?;
        let id = AgencyId(agency);
        self.store().get_agency(id).await?;
        let chain = self.store().approval_chain(id).await?;
        Ok(ApprovalChainView::of(agency, &chain))
    }

    /// Sets an agency's approval chain. Drafts already in review keep their steps.
    #[tracing::instrument(name = "suggestions.set_approval_chain", skip_all, fields(key_id = %p.key_id, agency_id = %agency))]
    pub async fn set_approval_chain(
        &self,
        p: &Principal,
        agency: Uuid,
        r: ApprovalChainBody,
    ) -> Result<ApprovalChainView, AppError> {
        let id = AgencyId(agency);
        policy::allow(p, Action::ManageApprovalChain(id))?;
        let chain = ApprovalChain {
            steps: r.steps,
            key_items_add_head: r.key_items_add_head,
        };
        chain
            .validate()
            .map_err(|(field, reason)| AppError::invalid(format!("{field}: {reason}")))?;
        let a = self.store().get_agency(id).await?;
        if a.assigning_office {
            return Err(AppError::invalid(
                "the assigning office issues no replies: an approval chain is for a handling agency",
            ));
        }
        self.store().set_approval_chain(id, &chain).await?;
        self.inner.chains.remove(&id);
        tracing::info!(steps = chain.steps.len(), "approval chain set");
        Ok(ApprovalChainView::of(agency, &chain))
    }

    // ---- keys ----

    #[tracing::instrument(name = "suggestions.create_key", skip_all, fields(key_id = %p.key_id))]
    pub async fn create_key(&self, p: &Principal, r: CreateKey) -> Result<CreatedKey, AppError> {
        policy::allow(p, Action::ManageKeys)?;
        let (agency, deputy) = self.key_binding(r.role, r.agency_id, r.deputy_id).await?;
        let client_cert = match r.client_cert_sha256.as_deref() {
            None | Some("") => None,
            Some(text) => {
                let hex: String = text.chars().filter(|c| *c != ':').collect();
                if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(AppError::new(
                        ErrorCode::InvalidArgument,
                        "client_cert_sha256 must be a certificate's SHA-256 fingerprint: 64 hex digits (colons allowed), as `openssl x509 -noout -fingerprint -sha256 -in cert.pem` prints it",
                    ));
                }
                Some(hex.to_ascii_lowercase())
            }
        };
        let position = Self::key_position(r.role, r.position)?;
        let (key, token) = self
            .store()
            .create_bound_key(
                r.role,
                agency,
                deputy,
                r.label.trim(),
                client_cert,
                position,
            )
            .await?;
        tracing::info!(key_id = %key.id, role = %key.role, cert_bound = key.client_cert.is_some(), "api key created");
        Ok(CreatedKey {
            key: (&key).into(),
            token,
        })
    }

    /// Checks the position a new key of `role` holds: only an agency's keys hold one.
    pub fn key_position(
        role: Role,
        position: Option<SignerPosition>,
    ) -> Result<Option<SignerPosition>, AppError> {
        match position {
            Some(_) if !role.is_agency_role() => Err(AppError::new(
                ErrorCode::InvalidArgument,
                format!(
                    "position: a {role} key holds no position in an agency; only agency_admin, handler and leader keys do"
                ),
            )),
            p => Ok(p),
        }
    }

    /// Checks what a new key of `role` is bound to.
    pub async fn key_binding(
        &self,
        role: Role,
        agency: Option<Uuid>,
        deputy: Option<Uuid>,
    ) -> Result<(Option<AgencyId>, Option<DeputyId>), AppError> {
        match role {
            Role::AssigningOffice => {
                let office = self
                    .store()
                    .list_agencies()
                    .await?
                    .into_iter()
                    .find(|a| a.assigning_office)
                    .ok_or_else(|| {
                        AppError::new(
                            ErrorCode::FailedPrecondition,
                            "no assigning office exists; run `banli init` first",
                        )
                    })?;
                if agency.is_some_and(|a| a != office.id.0) {
                    return Err(AppError::invalid(
                        "an assigning_office key belongs to the assigning office; leave agency_id out",
                    ));
                }
                Ok((Some(office.id), None))
            }
            Role::Deputy => {
                let d = deputy.ok_or_else(|| AppError::invalid("a deputy key needs deputy_id"))?;
                self.store().get_deputy(DeputyId(d)).await?;
                Ok((None, Some(DeputyId(d))))
            }
            Role::Auditor => Ok((None, None)),
            _ => {
                let a = agency
                    .ok_or_else(|| AppError::invalid(format!("a {role} key needs agency_id")))?;
                let found = self.store().get_agency(AgencyId(a)).await?;
                if found.assigning_office {
                    return Err(AppError::invalid(
                        "agency roles belong to handling agencies, not the assigning office",
                    ));
                }
                Ok((Some(found.id), None))
            }
        }
    }

    pub async fn list_keys(&self, p: &Principal) -> Result<Vec<KeyView>, AppError> {
        policy::allow(p, Action::ManageKeys)?;
        Ok(self
            .store()
            .list_keys()
            .await?
            .iter()
            .map(KeyView::from)
            .collect())
    }

    #[tracing::instrument(name = "suggestions.revoke_key", skip_all, fields(key_id = %p.key_id, revoked = %id))]
    pub async fn revoke_key(&self, p: &Principal, id: Uuid) -> Result<KeyView, AppError> {
        policy::allow(p, Action::ManageKeys)?;
        if id == p.key_id {
            return Err(AppError::invalid(
                "a key cannot revoke itself; use another assigning_office key",
            ));
        }
        let key = self.store().revoke_key(id).await?;
        self.inner.keys.clear();
        tracing::info!(key_id = %id, "api key revoked");
        Ok((&key).into())
    }
}

trait BodyName {
    fn body_name(&self) -> &'static str;
}

impl BodyName for CreateSession {
    fn body_name(&self) -> &'static str {
        match self.body {
            Body::Npc => "npc",
            Body::Cppcc => "cppcc",
        }
    }
}
