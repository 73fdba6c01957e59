//! Chinese first, English on request: every text of the console is written in both, side by
//! side where it is used (`lang.t("中文", "English")`), and the API's codes (states, roles,
//! rates) have their labels here.

/// The page's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    /// The text in this language.
    pub fn t(self, zh: &'static str, en: &'static str) -> &'static str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }

    /// `lang` attribute of the page.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The other language: its cookie value and its name, for the switch.
    pub fn other(self) -> (&'static str, &'static str) {
        match self {
            Lang::Zh => ("en", "English"),
            Lang::En => ("zh", "中文"),
        }
    }

    /// A suggestion's or an assignment's state.
    pub fn state(self, s: &str) -> String {
        let (zh, en) = match s {
            "submitted" => ("已提交", "submitted"),
            "under_review" => ("审查中", "under review"),
            "not_accepted" => ("不予立案", "not accepted"),
            "converted_to_letter" => ("转来信处理", "converted to a letter"),
            "registered" => ("已立案", "registered"),
            "assigned" => ("已交办", "assigned"),
            "replied" => ("已答复", "replied"),
            "evaluated" => ("已评价", "evaluated"),
            "re_handling" => ("重新办理", "being handled again"),
            "escalated" => ("已提级", "escalated"),
            "in_follow_up" => ("跟踪办理", "in follow-up"),
            "closed" => ("已办结", "closed"),
            "withdrawn" => ("已撤回", "withdrawn"),
            "pending_sign" => ("待签收", "to sign for"),
            "accepted" => ("已签收", "signed for"),
            "adjustment_pending" => ("申请调整中", "adjustment requested"),
            "superseded" => ("已调整", "superseded"),
            "in_handling" => ("办理中", "in handling"),
            "opinion_submitted" => ("已提交会办意见", "opinion sent"),
            "done" => ("已完成", "done"),
            "in_review" => ("内部审批中", "in internal approval"),
            "awaiting_review" => ("待交办机关审核", "awaiting the office's review"),
            "awaited" => ("待提交", "awaited"),
            "submitted_opinion" => ("已提交", "sent"),
            "waived" => ("已免", "waived"),
            "issued" => ("已发出", "issued"),
            "acknowledged" => ("已签收", "acknowledged"),
            "answered" => ("已回复", "answered"),
            "open" => ("进行中", "open"),
            "met" => ("已完成", "met"),
            "converted" => ("已转A", "converted"),
            other => return other.replace('_', " "),
        };
        self.t(zh, en).to_owned()
    }

    /// A unit's role on an item.
    pub fn unit_role(self, r: &str) -> &'static str {
        match r {
            "lead" => self.t("主办", "lead"),
            "co" => self.t("会办", "co-handling"),
            "separate" => self.t("分办", "separate"),
            "sole" => self.t("独办", "sole"),
            _ => "",
        }
    }

    /// How a communication took place.
    pub fn method(self, m: &str) -> String {
        let (zh, en) = match m {
            "visit" => ("上门走访", "visit"),
            "phone" => ("电话", "phone"),
            "letter" => ("书面", "letter"),
            "symposium" => ("座谈", "meeting"),
            "field_research" => ("实地调研", "field research"),
            "questionnaire" => ("问卷", "questionnaire"),
            "online_meeting" => ("视频会议", "online meeting"),
            "face_to_face_reply" => ("当面答复", "reply in person"),
            other => return other.replace('_', " "),
        };
        self.t(zh, en).to_owned()
    }

    /// A person's role.
    pub fn role(self, r: &str) -> &'static str {
        match r {
            "assigning_office" => self.t("交办机关", "assigning office"),
            "agency_admin" => self.t("承办单位办公室", "agency office"),
            "handler" => self.t("承办人", "handler"),
            "leader" => self.t("单位领导", "leader"),
            "deputy" => self.t("代表", "deputy"),
            "auditor" => self.t("审计人员", "inspector"),
            _ => "",
        }
    }

    /// A reply's class.
    pub fn class(self, c: &str) -> &'static str {
        match c {
            "A" => self.t("A类（已解决或采纳）", "A (solved or adopted)"),
            "B" => self.t("B类（正在解决或列入计划）", "B (being solved or planned)"),
            "C" => self.t("C类（留作参考）", "C (kept for reference)"),
            _ => "",
        }
    }

    /// A satisfaction level.
    pub fn satisfaction(self, s: &str) -> &'static str {
        match s {
            "satisfied" => self.t("满意", "satisfied"),
            "basically_satisfied" => self.t("基本满意", "basically satisfied"),
            "dissatisfied" => self.t("不满意", "dissatisfied"),
            _ => "",
        }
    }

    /// The short name of a rate of `/v1/metrics` (its definition comes with it).
    pub fn rate(self, name: &str) -> String {
        let (zh, en) = match name {
            "reply_rate" => ("办复率", "reply rate"),
            "on_time_rate" => ("按期办复率", "on-time rate"),
            "communication_rate" => ("沟通率", "communication rate"),
            "meeting_rate" => ("见面率", "meeting rate"),
            "satisfaction_rate_broad" => ("满意率（含基本满意）", "satisfaction (broad)"),
            "satisfaction_rate_strict" => ("满意率", "satisfaction (strict)"),
            "satisfaction_rate_first_round" => ("首轮满意率", "first-round satisfaction"),
            "resolution_rate" => ("解决率", "resolution rate"),
            "solved_or_planned_rate" => ("解决和列入计划率", "solved or planned"),
            "b_to_a_conversion" => ("B转A率", "B → A conversion"),
            "implementation_rate" => ("落实率", "implementation rate"),
            "post_reply_communication_rate" => ("答复后沟通率", "communication after the reply"),
            "recess_communication_rate" => ("闭会期间沟通率", "communication in recess"),
            other => return other.replace('_', " "),
        };
        self.t(zh, en).to_owned()
    }

    /// What an API error code means for the person, before its detail.
    pub fn refusal(self, status: u16) -> &'static str {
        match status {
            400 | 422 => self.t("请检查填写的内容", "Please check what you entered"),
            403 => self.t("您无权进行此操作", "You may not do this"),
            404 => self.t("找不到该事项", "Not found"),
            409 => self.t(
                "当前状态下不能进行此操作",
                "Not possible in the item's current state",
            ),
            412 => self.t(
                "自您打开此页面后，该事项已被他人修改",
                "Changed since you opened it",
            ),
            429 => self.t(
                "操作过于频繁，请稍后再试",
                "Too many attempts; try again later",
            ),
            _ => self.t(
                "服务暂时不可用，请稍后再试",
                "The service is unavailable; try again shortly",
            ),
        }
    }
}
