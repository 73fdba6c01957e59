//! Enumerations as the API spells them, for the OpenAPI document only: the domain's own types do
//! the (de)serialising, and a test keeps these lists equal to theirs.
#![allow(dead_code)]

use utoipa::ToSchema;

#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Body {
    Npc,
    Cppcc,
}

#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Role {
    AssigningOffice,
    AgencyAdmin,
    Handler,
    Leader,
    Deputy,
    Auditor,
}

#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ItemKind {
    Session,
    Recess,
}

#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Priority {
    Normal,
    Key,
    Difficult,
    Special,
}

#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Disclosure {
    Full,
    Summary,
    None,
}

#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ReviewDecision {
    Accept,
    NotAccept,
    ConvertToLetter,
}

#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum UnitRole {
    Lead,
    Co,
    Separate,
    Sole,
}

#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum CommunicationPhase {
    Before,
    During,
    After,
    Recess,
}

#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum CommunicationMethod {
    Visit,
    Phone,
    Letter,
    Symposium,
    FieldResearch,
    Questionnaire,
    OnlineMeeting,
    FaceToFaceReply,
}

#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum SignerPosition {
    PrincipalHead,
    AuthorizedLeader,
    DivisionHead,
    Staff,
}

#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ReplyType {
    Initial,
    ReHandled,
    Supplementary,
    Joint,
}

#[derive(Debug, ToSchema)]
pub enum ReplyClass {
    A,
    B,
    C,
    D,
}

#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Satisfaction {
    Satisfied,
    BasicallySatisfied,
    Dissatisfied,
}

#[cfg(test)]
mod tests {
    use banli_domain::suggestion as d;
    use serde::Serialize;
    use utoipa::PartialSchema;

    fn documented<T: PartialSchema>() -> Vec<String> {
        let v = serde_json::to_value(T::schema()).unwrap_or_default();
        v["enum"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn spelled<T: Serialize>(values: &[T]) -> Vec<String> {
        values
            .iter()
            .map(|v| {
                serde_json::to_value(v)
                    .ok()
                    .and_then(|j| j.as_str().map(str::to_owned))
                    .unwrap_or_default()
            })
            .collect()
    }

    #[test]
    fn the_document_lists_exactly_the_values_the_api_reads() {
        assert_eq!(
            documented::<super::Body>(),
            spelled(&[d::Body::Npc, d::Body::Cppcc])
        );
        assert_eq!(
            documented::<super::Role>(),
            banli_domain::Role::ALL
                .map(|r| r.as_str().to_owned())
                .to_vec()
        );
        assert_eq!(
            documented::<super::ItemKind>(),
            spelled(&[d::ItemKind::Session, d::ItemKind::Recess])
        );
        assert_eq!(
            documented::<super::Priority>(),
            spelled(&[
                d::Priority::Normal,
                d::Priority::Key,
                d::Priority::Difficult,
                d::Priority::Special
            ])
        );
        assert_eq!(
            documented::<super::Disclosure>(),
            spelled(&[
                d::Disclosure::Full,
                d::Disclosure::Summary,
                d::Disclosure::None
            ])
        );
        assert_eq!(
            documented::<super::ReviewDecision>(),
            spelled(&[
                d::ReviewDecision::Accept,
                d::ReviewDecision::NotAccept,
                d::ReviewDecision::ConvertToLetter
            ])
        );
        assert_eq!(
            documented::<super::UnitRole>(),
            spelled(&[
                d::UnitRole::Lead,
                d::UnitRole::Co,
                d::UnitRole::Separate,
                d::UnitRole::Sole
            ])
        );
        assert_eq!(
            documented::<super::CommunicationPhase>(),
            spelled(&[
                d::CommunicationPhase::Before,
                d::CommunicationPhase::During,
                d::CommunicationPhase::After,
                d::CommunicationPhase::Recess
            ])
        );
        use d::CommunicationMethod as M;
        assert_eq!(
            documented::<super::CommunicationMethod>(),
            spelled(&[
                M::Visit,
                M::Phone,
                M::Letter,
                M::Symposium,
                M::FieldResearch,
                M::Questionnaire,
                M::OnlineMeeting,
                M::FaceToFaceReply
            ])
        );
        use d::SignerPosition as S;
        assert_eq!(
            documented::<super::SignerPosition>(),
            spelled(&[
                S::PrincipalHead,
                S::AuthorizedLeader,
                S::DivisionHead,
                S::Staff
            ])
        );
        assert_eq!(
            documented::<super::ReplyType>(),
            spelled(&[
                d::ReplyType::Initial,
                d::ReplyType::ReHandled,
                d::ReplyType::Supplementary,
                d::ReplyType::Joint
            ])
        );
        assert_eq!(
            documented::<super::ReplyClass>(),
            spelled(&[
                d::ReplyClass::A,
                d::ReplyClass::B,
                d::ReplyClass::C,
                d::ReplyClass::D
            ])
        );
        assert_eq!(
            documented::<super::Satisfaction>(),
            spelled(&[
                d::Satisfaction::Satisfied,
                d::Satisfaction::BasicallySatisfied,
                d::Satisfaction::Dissatisfied
            ])
        );
    }
}
