//! A small world for domain tests: the assigning office, three agencies, three deputies.
#![allow(dead_code)]

use banli_calendar::Calendar;
use banli_domain::ids::*;
use banli_domain::suggestion::*;
use banli_domain::{Actor, DomainError, Role, RuleProfile, Rules};
use time::Date;
use time::macros::date;

pub struct World {
    pub profile: RuleProfile,
    pub office: AgencyId,
    pub lead: AgencyId,
    pub co1: AgencyId,
    pub co2: AgencyId,
    pub other: AgencyId,
    pub deputy: DeputyId,
    pub co_signer: DeputyId,
    pub session: SessionId,
    pub state: Option<Suggestion>,
    pub events: Vec<SuggestionEvent>,
    /// The units' approval chain (内部审批) for their replies; empty by default.
    pub chain: ApprovalChain,
}

impl World {
    pub fn new() -> World {
        World {
            profile: RuleProfile::hunan(),
            office: AgencyId::new(),
            lead: AgencyId::new(),
            co1: AgencyId::new(),
            co2: AgencyId::new(),
            other: AgencyId::new(),
            deputy: DeputyId::new(),
            co_signer: DeputyId::new(),
            session: SessionId::new(),
            state: None,
            events: Vec::new(),
            chain: ApprovalChain::default(),
        }
    }

    pub fn rules(&self) -> Rules<'_> {
        Rules {
            profile: &self.profile,
            calendar: Calendar::embedded(),
        }
    }

    pub fn s(&self) -> &Suggestion {
        self.state.as_ref().expect("submitted")
    }

    pub fn office_actor(&self) -> Actor {
        Actor::assigning_office(self.office)
    }

    pub fn try_run(
        &mut self,
        actor: Actor,
        kind: CommandKind,
    ) -> Result<Vec<SuggestionEvent>, DomainError> {
        let cmd = Command { actor, kind };
        let events = decide(self.state.as_ref(), &cmd, &self.rules())?;
        for e in &events {
            match (&mut self.state, e) {
                (None, SuggestionEvent::Submitted(sub)) => {
                    self.state = Some(Suggestion::new(SuggestionId::new(), sub))
                }
                (Some(s), e) => s.apply(e),
                (None, e) => panic!("first event is not submitted: {e:?}"),
            }
        }
        self.events.extend(events.iter().cloned());
        Ok(events)
    }

    pub fn run(&mut self, actor: Actor, kind: CommandKind) -> Vec<SuggestionEvent> {
        let name = kind.name();
        self.try_run(actor, kind)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    pub fn details(&self) -> SuggestionDetails {
        SuggestionDetails {
            session_id: self.session,
            number: "2020-0123".into(),
            title: "Support small manufacturers' digital upgrades".into(),
            body: "Set up a provincial fund and a service platform.".into(),
            category: "industry".into(),
            kind: ItemKind::Session,
            lead_deputy: self.deputy,
            delegation: "Changsha".into(),
            co_signers: vec![self.co_signer],
            key_supervised: false,
            priority: Priority::Normal,
            confidential: false,
            disclosure: Disclosure::Full,
        }
    }

    /// Submitted, reviewed, accepted.
    pub fn registered(&mut self, on: Date) {
        let details = self.details();
        let office = self.office_actor();
        self.run(
            Actor::deputy(self.deputy),
            CommandKind::Submit { details, on },
        );
        self.run(office.clone(), CommandKind::StartReview { on });
        self.run(
            office,
            CommandKind::Review {
                decision: ReviewDecision::Accept,
                reason: String::new(),
                on,
            },
        );
    }

    /// Registered and assigned to lead + two co-handlers; returns (lead, co1, co2) assignment ids.
    pub fn assigned(&mut self, on: Date) -> (AssignmentId, AssignmentId, AssignmentId) {
        self.registered(on);
        let ids = (
            AssignmentId::new(),
            AssignmentId::new(),
            AssignmentId::new(),
        );
        let units = vec![
            UnitAssignment {
                assignment_id: ids.0,
                agency: self.lead,
                role: UnitRole::Lead,
            },
            UnitAssignment {
                assignment_id: ids.1,
                agency: self.co1,
                role: UnitRole::Co,
            },
            UnitAssignment {
                assignment_id: ids.2,
                agency: self.co2,
                role: UnitRole::Co,
            },
        ];
        self.run(self.office_actor(), CommandKind::Assign { units, on });
        ids
    }

    pub fn admin(&self, agency: AgencyId) -> Actor {
        Actor::agency(Role::AgencyAdmin, agency)
    }

    pub fn sign_and_dispatch(&mut self, a: AssignmentId, agency: AgencyId, on: Date) {
        self.run(
            self.admin(agency),
            CommandKind::SignFor { assignment: a, on },
        );
        self.run(
            self.admin(agency),
            CommandKind::Dispatch {
                assignment: a,
                division: DIVISION,
                handler: "Li Hua".into(),
                responsible_leader: "Director Wang".into(),
                leading_official: None,
                plan: "visit the deputy, survey 20 firms".into(),
                unit_divisions: vec![DIVISION],
                on,
            },
        );
    }

    pub fn communicate(&mut self, a: AssignmentId, agency: AgencyId, on: Date, face_to_face: bool) {
        let communication = Communication {
            id: CommunicationId::new(),
            assignment_id: a,
            phase: CommunicationPhase::During,
            method: if face_to_face {
                CommunicationMethod::Visit
            } else {
                CommunicationMethod::Phone
            },
            face_to_face,
            deputies: vec![self.deputy],
            participants: vec!["Li Hua".into()],
            summary: "discussed the fund's scope".into(),
            on,
        };
        self.run(
            Actor::agency(Role::Handler, agency),
            CommandKind::RecordCommunication { communication },
        );
    }

    pub fn opinion(&mut self, a: AssignmentId, agency: AgencyId, on: Date) -> OpinionId {
        let opinion = CoHandlingOpinion {
            attachments: Vec::new(),
            letter: None,
            id: OpinionId::new(),
            assignment_id: a,
            document_number: format!("会办〔2020〕{}号", self.events.len()),
            body: "We support the fund and will provide the data platform.".into(),
            signer: Signer {
                name: "Deputy Director Zhao".into(),
                position: SignerPosition::AuthorizedLeader,
            },
            on,
            acknowledged_on: None,
            measures: vec![],
            no_measure_reason: Some(
                "the fund is the lead's remit; we provide data on request".into(),
            ),
            consultations: vec![],
            flagged: false,
        };
        let id = opinion.id;
        self.run(self.admin(agency), CommandKind::SubmitOpinion { opinion });
        id
    }

    pub fn reply(
        &self,
        a: AssignmentId,
        class: ReplyClass,
        reply_type: ReplyType,
        references: Vec<OpinionId>,
        on: Date,
    ) -> Reply {
        Reply {
            publication: None,
            publication_due: None,
            approvals: Vec::new(),
            review: None,
            review_due: None,
            attachments: Vec::new(),
            letter: None,
            id: ReplyId::new(),
            assignment_id: a,
            reply_type,
            document_number: "答复〔2020〕7号".into(),
            body: "The fund is being set up; the first batch is planned for 2021.".into(),
            class,
            signer: Signer {
                name: "Director Chen".into(),
                position: SignerPosition::PrincipalHead,
            },
            references,
            countersigned_by: vec![],
            round: 0,
            on,
            consultations: vec![],
        }
    }

    pub fn feedback(&self, deputy: DeputyId, level: Satisfaction, on: Date) -> Feedback {
        Feedback {
            deputy,
            level,
            handling: None,
            result: None,
            comment: String::new(),
            round: 0,
            on,
        }
    }
}

/// The one division every test unit has.
pub const DIVISION: DivisionId = DivisionId(uuid::Uuid::from_u128(
    0x0190_0000_0000_7000_8000_0000_0000_0001,
));

pub const DAY0: Date = date!(2020 - 03 - 02);

pub fn days(n: i64) -> Date {
    DAY0 + time::Duration::days(n)
}

/// The events' variant names, in order.
pub fn kinds(events: &[SuggestionEvent]) -> Vec<&'static str> {
    events.iter().map(|e| e.type_name()).collect()
}

/// Runs a co-handled item up to the lead's reply being possible.
pub fn ready_to_reply(w: &mut World) -> (AssignmentId, AssignmentId, AssignmentId, OpinionId) {
    let (lead, co1, co2) = w.assigned(DAY0);
    w.sign_and_dispatch(lead, w.lead, days(1));
    w.sign_and_dispatch(co1, w.co1, days(2));
    w.communicate(lead, w.lead, days(10), true);
    let op = w.opinion(co1, w.co1, days(20));
    w.run(
        w.office_actor(),
        CommandKind::WaiveOpinion {
            assignment: co2,
            reason: "no relevant remit".into(),
            on: days(21),
        },
    );
    (lead, co1, co2, op)
}
