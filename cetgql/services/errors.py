"""Domain errors: one stable code per failure a user can act on, with Chinese and English text.

Services raise :class:`DomainError`; the GraphQL layer turns it into ``userErrors``. The code
list here is the single source of the ``UserErrorCode`` enum in the schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class ErrorCode(StrEnum):
    # generic input
    REQUIRED = "REQUIRED"
    TOO_LONG = "TOO_LONG"
    INVALID_FORMAT = "INVALID_FORMAT"
    NOT_FOUND = "NOT_FOUND"
    RATE_LIMITED = "RATE_LIMITED"
    FORBIDDEN = "FORBIDDEN"
    # accounts (A1–A7)
    INVALID_ID_NUMBER = "INVALID_ID_NUMBER"
    ID_TYPE_NOT_ALLOWED = "ID_TYPE_NOT_ALLOWED"
    INVALID_NAME = "INVALID_NAME"
    INVALID_PHONE = "INVALID_PHONE"
    INVALID_EMAIL = "INVALID_EMAIL"
    WEAK_PASSWORD = "WEAK_PASSWORD"
    ID_NUMBER_TAKEN = "ID_NUMBER_TAKEN"
    PHONE_TAKEN = "PHONE_TAKEN"
    EMAIL_TAKEN = "EMAIL_TAKEN"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    SIGN_IN_THROTTLED = "SIGN_IN_THROTTLED"
    ACCOUNT_LOCKED = "ACCOUNT_LOCKED"
    PASSWORD_CHANGE_REQUIRED = "PASSWORD_CHANGE_REQUIRED"
    WRONG_PASSWORD = "WRONG_PASSWORD"
    SAME_PASSWORD = "SAME_PASSWORD"
    NO_CONTACT_FOR_CHANNEL = "NO_CONTACT_FOR_CHANNEL"
    INVALID_CODE = "INVALID_CODE"
    CODE_EXPIRED = "CODE_EXPIRED"
    CODE_ATTEMPTS_EXCEEDED = "CODE_ATTEMPTS_EXCEEDED"
    APPEAL_ALREADY_REVIEWED = "APPEAL_ALREADY_REVIEWED"
    APPEAL_IDENTITY_MISMATCH = "APPEAL_IDENTITY_MISMATCH"
    # qualification (Q1–Q2) and roster
    SESSION_NOT_FOUND = "SESSION_NOT_FOUND"
    QUALIFICATION_FAILED = "QUALIFICATION_FAILED"
    IDENTITY_NOT_ACCOUNT_HOLDER = "IDENTITY_NOT_ACCOUNT_HOLDER"
    NOT_QUALIFIED = "NOT_QUALIFIED"
    ALREADY_CONFIRMED = "ALREADY_CONFIRMED"
    ROSTER_INVALID = "ROSTER_INVALID"
    UNSUPPORTED_FILE = "UNSUPPORTED_FILE"
    OUT_OF_SCOPE = "OUT_OF_SCOPE"
    FILE_TOO_LARGE = "FILE_TOO_LARGE"
    EMPTY_FILE = "EMPTY_FILE"
    MISSING_COLUMN = "MISSING_COLUMN"
    UNKNOWN_SCHOOL = "UNKNOWN_SCHOOL"
    UNKNOWN_CAMPUS = "UNKNOWN_CAMPUS"
    UNKNOWN_SUBJECT = "UNKNOWN_SUBJECT"
    DUPLICATE_IN_FILE = "DUPLICATE_IN_FILE"
    HELD_BY_ANOTHER_SCHOOL = "HELD_BY_ANOTHER_SCHOOL"
    PHOTO_NOT_FOUND = "PHOTO_NOT_FOUND"
    PHOTO_INVALID = "PHOTO_INVALID"
    PHOTO_TOO_LARGE = "PHOTO_TOO_LARGE"
    ROSTER_RECORD_IN_USE = "ROSTER_RECORD_IN_USE"
    ID_NUMBER_IN_ROSTER = "ID_NUMBER_IN_ROSTER"
    # registration (S1–S12)
    NOT_CONFIRMED = "NOT_CONFIRMED"
    SUBJECT_NOT_OFFERED = "SUBJECT_NOT_OFFERED"
    SUBJECT_NOT_IN_ROSTER = "SUBJECT_NOT_IN_ROSTER"
    CET6_REQUIRES_CET4 = "CET6_REQUIRES_CET4"
    WRITTEN_NOT_PAID = "WRITTEN_NOT_PAID"
    SLOT_TAKEN = "SLOT_TAKEN"
    WINDOW_CLOSED = "WINDOW_CLOSED"
    SEATS_FULL = "SEATS_FULL"
    ALREADY_REGISTERED = "ALREADY_REGISTERED"
    ORAL_CENTER_REQUIRED = "ORAL_CENTER_REQUIRED"
    ORAL_CENTER_NOT_ALLOWED = "ORAL_CENTER_NOT_ALLOWED"
    DUPLICATE_SUBJECT = "DUPLICATE_SUBJECT"
    TOO_MANY_ITEMS = "TOO_MANY_ITEMS"
    ORDER_NOT_PENDING = "ORDER_NOT_PENDING"
    # payments (P1–P6)
    PROVIDER_NOT_AVAILABLE = "PROVIDER_NOT_AVAILABLE"
    PROVIDER_UNREACHABLE = "PROVIDER_UNREACHABLE"
    ORDER_ALREADY_PAID = "ORDER_ALREADY_PAID"
    ORDER_LAPSED = "ORDER_LAPSED"
    INVALID_RETURN_URL = "INVALID_RETURN_URL"
    # provider settings of a province (P1)
    UNKNOWN_PAYMENT_PROVIDER = "UNKNOWN_PAYMENT_PROVIDER"
    UNKNOWN_SETTING_FIELD = "UNKNOWN_SETTING_FIELD"
    DUPLICATE_SETTING_FIELD = "DUPLICATE_SETTING_FIELD"
    PROVIDER_SETTING_REQUIRED = "PROVIDER_SETTING_REQUIRED"
    # CET6 review (S4)
    CET6_ALREADY_ALLOWED = "CET6_ALREADY_ALLOWED"
    CET6_REVIEW_PENDING = "CET6_REVIEW_PENDING"
    CET4_TICKET_INVALID = "CET4_TICKET_INVALID"
    CET4_SCORE_NOT_FOUND = "CET4_SCORE_NOT_FOUND"
    CET4_SCORE_TOO_LOW = "CET4_SCORE_TOO_LOW"
    REVIEW_ALREADY_DECIDED = "REVIEW_ALREADY_DECIDED"
    # group registration (S11)
    NOT_ON_SCHOOL_ROSTER = "NOT_ON_SCHOOL_ROSTER"
    GROUP_WRITTEN_ONLY = "GROUP_WRITTEN_ONLY"
    ACCOUNT_IDENTITY_MISMATCH = "ACCOUNT_IDENTITY_MISMATCH"
    GROUP_REGISTRATION_INVALID = "GROUP_REGISTRATION_INVALID"
    # registration set-up by admins (S1, S3, S6, P5)
    SESSION_EXISTS = "SESSION_EXISTS"
    INVALID_TIME_RANGE = "INVALID_TIME_RANGE"
    SLOT_CHANGE_CONFLICT = "SLOT_CHANGE_CONFLICT"
    UNKNOWN_PROVINCE = "UNKNOWN_PROVINCE"
    SCHOOL_NOT_IN_PROVINCE = "SCHOOL_NOT_IN_PROVINCE"
    SCHOOL_WINDOW_WRITTEN_ONLY = "SCHOOL_WINDOW_WRITTEN_ONLY"
    FEE_OUT_OF_RANGE = "FEE_OUT_OF_RANGE"
    CENTER_CODE_INVALID = "CENTER_CODE_INVALID"
    CENTER_CODE_TAKEN = "CENTER_CODE_TAKEN"
    INVALID_CAPACITY = "INVALID_CAPACITY"
    CAPACITY_BELOW_HELD = "CAPACITY_BELOW_HELD"
    SUBJECT_NOT_ORAL = "SUBJECT_NOT_ORAL"
    CENTER_SUBJECT_IN_USE = "CENTER_SUBJECT_IN_USE"
    FILE_INVALID = "FILE_INVALID"
    NO_DATA_ROWS = "NO_DATA_ROWS"
    DUPLICATE_ROW = "DUPLICATE_ROW"
    # scores (R1–R9) and the working-day calendar
    SCORES_INVALID = "SCORES_INVALID"
    TICKET_NUMBER_INVALID = "TICKET_NUMBER_INVALID"
    TICKET_SESSION_MISMATCH = "TICKET_SESSION_MISMATCH"
    TICKET_SUBJECT_MISMATCH = "TICKET_SUBJECT_MISMATCH"
    TICKET_IDENTITY_MISMATCH = "TICKET_IDENTITY_MISMATCH"
    TICKET_IN_OTHER_SESSION = "TICKET_IN_OTHER_SESSION"
    DUPLICATE_CANDIDATE = "DUPLICATE_CANDIDATE"
    SCORE_OUT_OF_RANGE = "SCORE_OUT_OF_RANGE"
    SCORE_NOT_HALF_POINT = "SCORE_NOT_HALF_POINT"
    TOTAL_MISMATCH = "TOTAL_MISMATCH"
    SCORES_WHEN_ABSENT = "SCORES_WHEN_ABSENT"
    WRONG_SCORE_KIND = "WRONG_SCORE_KIND"
    INVALID_ORAL_GRADE = "INVALID_ORAL_GRADE"
    SCORES_NOT_RELEASED = "SCORES_NOT_RELEASED"
    SCORES_ALREADY_RELEASED = "SCORES_ALREADY_RELEASED"
    DAY_OUTSIDE_YEAR = "DAY_OUTSIDE_YEAR"
    NO_SCORE_REPORT = "NO_SCORE_REPORT"
    PAPER_CHOICE_CLOSED = "PAPER_CHOICE_CLOSED"
    PAPER_REQUEST_CLOSED = "PAPER_REQUEST_CLOSED"
    PAPER_REPORT_NOT_REQUESTED = "PAPER_REPORT_NOT_REQUESTED"
    PAPER_REPORT_COLLECTED = "PAPER_REPORT_COLLECTED"
    PAPER_REPORT_FORFEITED = "PAPER_REPORT_FORFEITED"
    VERIFICATION_CLOSED = "VERIFICATION_CLOSED"
    VERIFICATION_EXISTS = "VERIFICATION_EXISTS"
    VERIFICATION_WRITTEN_ONLY = "VERIFICATION_WRITTEN_ONLY"
    VERIFICATION_ALREADY_RESOLVED = "VERIFICATION_ALREADY_RESOLVED"
    CORRECTION_REQUIRED = "CORRECTION_REQUIRED"
    # printed documents and admission tickets (T1–T5)
    MISSING_GLYPH = "MISSING_GLYPH"
    ROOM_NUMBER_INVALID = "ROOM_NUMBER_INVALID"
    ROOM_CAPACITY_INVALID = "ROOM_CAPACITY_INVALID"
    DUPLICATE_ROOM = "DUPLICATE_ROOM"
    ROOM_IN_USE = "ROOM_IN_USE"
    SCHOOL_TICKETS_WRITTEN_ONLY = "SCHOOL_TICKETS_WRITTEN_ONLY"
    REGISTRATION_STILL_OPEN = "REGISTRATION_STILL_OPEN"
    PAYMENTS_PENDING = "PAYMENTS_PENDING"
    NOT_ENOUGH_SEATS = "NOT_ENOUGH_SEATS"
    SEED_INVALID = "SEED_INVALID"
    NOT_ALLOCATED = "NOT_ALLOCATED"
    NOTHING_TO_PRINT = "NOTHING_TO_PRINT"


_MESSAGES: dict[ErrorCode, tuple[str, str]] = {
    ErrorCode.REQUIRED: ("此项为必填项。", "This field is required."),
    ErrorCode.TOO_LONG: ("内容过长。", "The value is too long."),
    ErrorCode.INVALID_FORMAT: ("格式不正确。", "The value is not in the expected format."),
    ErrorCode.NOT_FOUND: ("未找到该对象。", "Nothing was found with that id."),
    ErrorCode.RATE_LIMITED: (
        "操作过于频繁，请稍后再试。",
        "Too many attempts; please try again later.",
    ),
    ErrorCode.FORBIDDEN: ("您无权进行此操作。", "You are not allowed to do this."),
    ErrorCode.INVALID_ID_NUMBER: (
        "证件号码不正确，请核对后重新输入。",
        "The ID number is not valid; please check it.",
    ),
    ErrorCode.ID_TYPE_NOT_ALLOWED: (
        "不支持该证件类型。",
        "This ID type cannot be used here.",
    ),
    ErrorCode.INVALID_NAME: (
        "姓名不正确，请按证件上的姓名填写。",
        "The name is not valid; enter it as on your ID.",
    ),
    ErrorCode.INVALID_PHONE: ("手机号码格式不正确。", "The mobile number is not valid."),
    ErrorCode.INVALID_EMAIL: ("电子邮箱格式不正确。", "The email address is not valid."),
    ErrorCode.WEAK_PASSWORD: (
        "密码至少 8 位，且须同时包含字母、数字和符号。",
        "The password needs at least 8 characters with letters, digits and a symbol.",
    ),
    ErrorCode.ID_NUMBER_TAKEN: (
        "该证件号码已注册，请直接登录或重置密码。",
        "This ID number already has an account; sign in or reset the password.",
    ),
    ErrorCode.PHONE_TAKEN: (
        "该手机号码已被其他账号使用，可提交信息占用申诉。",
        "This mobile number is used by another account; you may file an appeal.",
    ),
    ErrorCode.EMAIL_TAKEN: (
        "该电子邮箱已被其他账号使用。",
        "This email address is used by another account.",
    ),
    ErrorCode.INVALID_CREDENTIALS: (
        "账号或密码错误。",
        "The account or password is wrong.",
    ),
    ErrorCode.SIGN_IN_THROTTLED: (
        "登录失败次数过多，请稍后再试。",
        "Too many failed sign-ins; please wait before trying again.",
    ),
    ErrorCode.ACCOUNT_LOCKED: (
        "登录失败次数过多，账号已临时锁定，请稍后再试或重置密码。",
        "Too many failed sign-ins: the account is locked for a while; try later or reset "
        "the password.",
    ),
    ErrorCode.PASSWORD_CHANGE_REQUIRED: (
        "请先修改初始密码。",
        "Please change your initial password first.",
    ),
    ErrorCode.WRONG_PASSWORD: ("当前密码不正确。", "The current password is wrong."),
    ErrorCode.SAME_PASSWORD: (
        "新密码不能与当前密码相同。",
        "The new password must differ from the current one.",
    ),
    ErrorCode.NO_CONTACT_FOR_CHANNEL: (
        "该账号未登记此联系方式。",
        "The account has no contact of this kind registered.",
    ),
    ErrorCode.INVALID_CODE: ("验证码不正确。", "The verification code is wrong."),
    ErrorCode.CODE_EXPIRED: (
        "验证码已失效，请重新获取。",
        "The verification code has expired; request a new one.",
    ),
    ErrorCode.CODE_ATTEMPTS_EXCEEDED: (
        "验证码错误次数过多，请重新获取。",
        "Too many wrong codes; request a new one.",
    ),
    ErrorCode.APPEAL_ALREADY_REVIEWED: (
        "该申诉已处理。",
        "This appeal has already been reviewed.",
    ),
    ErrorCode.APPEAL_IDENTITY_MISMATCH: (
        "未找到与所填身份信息一致的账号。",
        "No account matches the identity details given.",
    ),
    ErrorCode.SESSION_NOT_FOUND: ("考次不存在。", "There is no such exam session."),
    ErrorCode.QUALIFICATION_FAILED: (
        "资格验证未通过。请检查姓名、证件类型、证件号码是否正确；"
        "确认无误后仍无法通过，请联系您所在学校的相关部门。",
        "The qualification check failed. Check your name, ID type and ID number; if they are "
        "right, contact your school.",
    ),
    ErrorCode.IDENTITY_NOT_ACCOUNT_HOLDER: (
        "所填身份信息与当前账号的注册信息不一致。",
        "The identity entered differs from this account's registered identity.",
    ),
    ErrorCode.NOT_QUALIFIED: (
        "请先完成资格验证。",
        "Please pass the qualification check first.",
    ),
    ErrorCode.ALREADY_CONFIRMED: (
        "信息已确认。",
        "The information has already been confirmed.",
    ),
    ErrorCode.ROSTER_INVALID: (
        "学籍文件有错误，未导入任何记录。",
        "The roster file has errors; nothing was imported.",
    ),
    ErrorCode.UNSUPPORTED_FILE: (
        "不支持的文件格式，请上传 CSV 或 XLSX 文件。",
        "Unsupported file; upload CSV or XLSX.",
    ),
    ErrorCode.OUT_OF_SCOPE: (
        "超出您的管理范围。",
        "This is outside the scope you administer.",
    ),
    ErrorCode.FILE_TOO_LARGE: ("文件过大。", "The file is too large."),
    ErrorCode.EMPTY_FILE: ("文件中没有学生记录。", "The file has no student rows."),
    ErrorCode.MISSING_COLUMN: ("缺少必需的列。", "A required column is missing."),
    ErrorCode.UNKNOWN_SCHOOL: ("学校代码不存在。", "There is no school with this code."),
    ErrorCode.UNKNOWN_CAMPUS: (
        "该学校没有此校区代码。",
        "The school has no campus with this code.",
    ),
    ErrorCode.UNKNOWN_SUBJECT: (
        "本考次不开考该科目。",
        "This subject is not offered in the session.",
    ),
    ErrorCode.DUPLICATE_IN_FILE: (
        "证件号码在文件中重复出现。",
        "The ID number appears more than once in the file.",
    ),
    ErrorCode.HELD_BY_ANOTHER_SCHOOL: (
        "该考生已在其他学校本考次的学籍中，请联系上级管理部门。",
        "This student is on another school's roster for the session; contact the "
        "supervising office.",
    ),
    ErrorCode.PHOTO_NOT_FOUND: ("未找到照片文件。", "The photo file was not found."),
    ErrorCode.PHOTO_INVALID: (
        "照片须为 JPEG 或 PNG 图片。",
        "The photo must be a JPEG or PNG image.",
    ),
    ErrorCode.PHOTO_TOO_LARGE: ("照片不能超过 200 KB。", "The photo must be 200 KB or less."),
    ErrorCode.ROSTER_RECORD_IN_USE: (
        "该学籍记录已有考生通过资格验证，不能修改证件信息。",
        "A candidate has already matched this record; its ID cannot be changed.",
    ),
    ErrorCode.ID_NUMBER_IN_ROSTER: (
        "本考次学籍中已有该证件号码。",
        "This ID number is already on the session's roster.",
    ),
    ErrorCode.NOT_CONFIRMED: (
        "请先确认个人、学籍及可报科目信息。",
        "Please confirm your personal, enrolment and subject details first.",
    ),
    ErrorCode.SUBJECT_NOT_OFFERED: (
        "本考次您所在省份不开考该科目。",
        "This subject is not offered in your province this session.",
    ),
    ErrorCode.SUBJECT_NOT_IN_ROSTER: (
        "您不具备该科目的报考资格，请联系所在学校。",
        "Your school has not made you eligible for this subject; contact your school.",
    ),
    ErrorCode.CET6_REQUIRES_CET4: (
        "报考英语六级须英语四级成绩 425 分及以上，可申请六级资格审核。",
        "CET6 needs a CET4 score of 425 or more; you may ask for a CET6 review.",
    ),
    ErrorCode.WRITTEN_NOT_PAID: (
        "报考口试须先完成本考次对应级别笔试科目的报考及缴费。",
        "An oral test needs the written subject of the same level in this session, paid.",
    ),
    ErrorCode.SLOT_TAKEN: (
        "该科目与您已报科目考试时间冲突。",
        "This subject sits at the same time as a subject you already chose.",
    ),
    ErrorCode.WINDOW_CLOSED: ("当前不在报名时间内。", "Registration is not open now."),
    ErrorCode.SEATS_FULL: ("该考点考位已满。", "This test centre has no seats left."),
    ErrorCode.ALREADY_REGISTERED: (
        "您已报考该科目。",
        "You have already chosen this subject.",
    ),
    ErrorCode.ORAL_CENTER_REQUIRED: (
        "报考口试须选择口试考点。",
        "Choose an oral test centre for an oral subject.",
    ),
    ErrorCode.ORAL_CENTER_NOT_ALLOWED: (
        "该考点不可选：须为您所在省份开考该科目的口试考点；笔试考点为您所在学校，无须选择。",
        "This centre cannot be chosen: pick an oral centre of your province for this subject "
        "(the written centre is your school and is not chosen).",
    ),
    ErrorCode.DUPLICATE_SUBJECT: (
        "同一科目不能重复选择。",
        "The same subject was chosen twice.",
    ),
    ErrorCode.TOO_MANY_ITEMS: ("一次选择的科目过多。", "Too many subjects in one request."),
    ErrorCode.PROVIDER_NOT_AVAILABLE: (
        "该支付方式在您所在省份未开通。",
        "This payment method is not available in your province.",
    ),
    ErrorCode.PROVIDER_UNREACHABLE: (
        "支付机构暂时无法连接，请稍后再试；已付款项不会丢失。",
        "The payment provider cannot be reached right now; try again later. "
        "Money already paid is not lost.",
    ),
    ErrorCode.ORDER_ALREADY_PAID: ("该订单已缴费。", "This order is already paid."),
    ErrorCode.ORDER_LAPSED: (
        "该订单已超过 24 小时缴费期限而失效，请重新选择科目。",
        "This order passed its 24-hour payment deadline; choose the subjects again.",
    ),
    ErrorCode.INVALID_RETURN_URL: (
        "返回地址须为 http 或 https 地址。",
        "The return URL must be an http or https URL.",
    ),
    ErrorCode.UNKNOWN_PAYMENT_PROVIDER: (
        "系统中未安装该支付方式。",
        "No payment provider of this name is installed.",
    ),
    ErrorCode.UNKNOWN_SETTING_FIELD: (
        "该支付方式没有此项商户设置。",
        "The payment provider has no merchant setting of this name.",
    ),
    ErrorCode.DUPLICATE_SETTING_FIELD: (
        "同一商户设置项不能重复填写。",
        "The same merchant setting was given twice.",
    ),
    ErrorCode.PROVIDER_SETTING_REQUIRED: (
        "开通该支付方式前须填写全部必填的商户设置，缺少：",
        "Every required merchant setting must be filled in before the provider is turned on; "
        "missing:",
    ),
    ErrorCode.ORDER_NOT_PENDING: (
        "该订单已缴费、已失效或已取消，不能再变更。",
        "This order is paid, lapsed or cancelled and cannot be changed.",
    ),
    ErrorCode.CET6_ALREADY_ALLOWED: (
        "您已具备英语六级报考资格，无须申请审核。",
        "You may already register for CET6; no review is needed.",
    ),
    ErrorCode.CET6_REVIEW_PENDING: (
        "您的六级资格审核申请正在由学校审核，请等待审核结果。",
        "Your CET6 review request is with your school; please wait for its decision.",
    ),
    ErrorCode.CET4_TICKET_INVALID: (
        "请输入 15 位英语四级笔试准考证号（第 10 位为 1）。",
        "Enter the 15-digit ticket number of a CET4 written test (its 10th digit is 1).",
    ),
    ErrorCode.CET4_SCORE_NOT_FOUND: (
        "未找到与您的身份信息相符的英语四级成绩，请核对准考证号；2005 年以前的成绩请联系所在学校。",
        "No CET4 score matching your identity was found; check the ticket number. For scores "
        "from before 2005, contact your school.",
    ),
    ErrorCode.CET4_SCORE_TOO_LOW: (
        "该次英语四级成绩低于 425 分，不能据此报考英语六级。",
        "That CET4 score is below 425 and does not qualify for CET6.",
    ),
    ErrorCode.REVIEW_ALREADY_DECIDED: ("该申请已处理。", "This request has already been decided."),
    ErrorCode.NOT_ON_SCHOOL_ROSTER: (
        "该考生不在本校本考次的学籍中。",
        "This student is not on the school's roster for the session.",
    ),
    ErrorCode.GROUP_WRITTEN_ONLY: (
        "集体报名仅限笔试科目，口试科目由考生本人登录报考。",
        "Group registration covers written subjects only; students register for oral "
        "subjects themselves online.",
    ),
    ErrorCode.ACCOUNT_IDENTITY_MISMATCH: (
        "已用该证件号码注册的报名账号与学籍的姓名或证件类型不一致，请核实后再报名。",
        "The account registered with this ID number differs from the roster in name or ID "
        "type; check it before registering the student.",
    ),
    ErrorCode.GROUP_REGISTRATION_INVALID: (
        "集体报名数据有错误，未为任何考生报名。",
        "The group registration has errors; no student was registered.",
    ),
    ErrorCode.SESSION_EXISTS: ("该考次已存在。", "This exam session already exists."),
    ErrorCode.INVALID_TIME_RANGE: (
        "开始时间须早于结束时间。",
        "The start must be before the end.",
    ),
    ErrorCode.SLOT_CHANGE_CONFLICT: (
        "已有考生报考了该时段的其他科目，不能改到此时段。",
        "Candidates already hold another subject in that slot; this subject cannot move to it.",
    ),
    ErrorCode.UNKNOWN_PROVINCE: ("省份代码不存在。", "There is no province with this code."),
    ErrorCode.SCHOOL_NOT_IN_PROVINCE: (
        "该学校不属于所选省份。",
        "The school is not in this province.",
    ),
    ErrorCode.SCHOOL_WINDOW_WRITTEN_ONLY: (
        "学校只能设置笔试报名时间，口试报名时间由省级承办机构设置。",
        "A school sets only its written registration window; the oral window is the province's.",
    ),
    ErrorCode.FEE_OUT_OF_RANGE: (
        "报名费须大于 0 元且不超过 1000 元（以分计为 1–100000）。",
        "A fee must be more than 0 and at most 1000.00 CNY (1–100000 fen).",
    ),
    ErrorCode.CENTER_CODE_INVALID: (
        "考点代码须为 6 位数字，且前两位为所在省份代码。",
        "An oral centre code is 6 digits beginning with its province code.",
    ),
    ErrorCode.CENTER_CODE_TAKEN: (
        "本考次已有该代码的口试考点。",
        "An oral centre of this session already has this code.",
    ),
    ErrorCode.INVALID_CAPACITY: (
        "考位数须为 0 至 100000 之间的整数。",
        "The capacity must be a whole number from 0 to 100000.",
    ),
    ErrorCode.CAPACITY_BELOW_HELD: (
        "考位数不能少于已被占用的考位数（括号内为已占用数）。",
        "The capacity cannot be less than the seats already held (shown in brackets).",
    ),
    ErrorCode.SUBJECT_NOT_ORAL: (
        "口试考点只能开考口试科目。",
        "An oral centre examines oral subjects only.",
    ),
    ErrorCode.CENTER_SUBJECT_IN_USE: (
        "已有考生在该考点报考此科目，不能取消该科目。",
        "Candidates hold seats for this subject at the centre; it cannot be removed.",
    ),
    ErrorCode.FILE_INVALID: (
        "文件有错误，未导入任何记录。",
        "The file has errors; nothing was imported.",
    ),
    ErrorCode.NO_DATA_ROWS: ("文件中没有数据行。", "The file has no data rows."),
    ErrorCode.DUPLICATE_ROW: (
        "该记录在文件中重复出现。",
        "This entry appears more than once in the file.",
    ),
    ErrorCode.SCORES_INVALID: (
        "成绩文件有错误，未导入任何成绩。",
        "The score file has errors; no score was imported.",
    ),
    ErrorCode.TICKET_NUMBER_INVALID: (
        "准考证号须为 15 位数字（笔试第 10 位为科目代码 1–9，"
        "口试第 10 位为 0、第 11 位为 4 或 6）。",
        "A ticket number is 15 digits (written: 10th digit the subject code 1-9; oral: 10th "
        "digit 0 and 11th digit 4 or 6).",
    ),
    ErrorCode.TICKET_SESSION_MISMATCH: (
        "准考证号中的年份或上/下半年与考次不符。",
        "The year or half year in the ticket number is not the session's.",
    ),
    ErrorCode.TICKET_SUBJECT_MISMATCH: (
        "准考证号与科目不符。",
        "The ticket number is not one of this subject.",
    ),
    ErrorCode.TICKET_IDENTITY_MISMATCH: (
        "姓名或证件与持有该准考证的考生不一致。",
        "The name or ID differs from the candidate holding this ticket.",
    ),
    ErrorCode.TICKET_IN_OTHER_SESSION: (
        "该准考证号已有其他考次的成绩。",
        "This ticket number already has a score in another session.",
    ),
    ErrorCode.DUPLICATE_CANDIDATE: (
        "同一考生本考次同一科目已有另一准考证号的成绩。",
        "The same candidate already has a score for this subject in the session under "
        "another ticket number.",
    ),
    ErrorCode.SCORE_OUT_OF_RANGE: (
        "分数超出范围（听力、阅读 0–248.5，写作和翻译 0–213，总分 0–710）。",
        "The score is out of range (listening and reading 0-248.5, writing and translation "
        "0-213, total 0-710).",
    ),
    ErrorCode.SCORE_NOT_HALF_POINT: (
        "分数须为 0.5 的整数倍。",
        "A score is a multiple of 0.5.",
    ),
    ErrorCode.TOTAL_MISMATCH: (
        "总分与各部分分数之和不符。",
        "The total is not the sum of the section scores.",
    ),
    ErrorCode.SCORES_WHEN_ABSENT: (
        "缺考考生不应有分数。",
        "An absent candidate has no scores.",
    ),
    ErrorCode.WRONG_SCORE_KIND: (
        "笔试科目只填各部分分数，口试科目只填口试等级。",
        "A written subject has section scores only, an oral subject a grade only.",
    ),
    ErrorCode.INVALID_ORAL_GRADE: (
        "口试等级不正确，本考次可用的等级为：",
        "The oral grade is not valid; the grades of this session are:",
    ),
    ErrorCode.SCORES_NOT_RELEASED: (
        "本考次成绩尚未发布。",
        "The scores of this session are not released yet.",
    ),
    ErrorCode.SCORES_ALREADY_RELEASED: (
        "本考次成绩已发布，发布时间不能再修改。",
        "The scores of this session are released; the release time can no longer change.",
    ),
    ErrorCode.DAY_OUTSIDE_YEAR: (
        "日期不在所设置的年份内。",
        "The date is not in the year being set.",
    ),
    ErrorCode.NO_SCORE_REPORT: (
        "该成绩未达到发放成绩报告单的条件（笔试 220 分及以上或口试合格及以上）。",
        "No report is issued for this score (it needs a written score of 220 or more or an "
        "oral pass).",
    ),
    ErrorCode.PAPER_CHOICE_CLOSED: (
        "成绩发布后请在成绩中申请纸质成绩报告单。",
        "After the release, request the paper report on the score instead.",
    ),
    ErrorCode.PAPER_REQUEST_CLOSED: (
        "已超过申请纸质成绩报告单的时间。",
        "The period for requesting a paper report is over.",
    ),
    ErrorCode.PAPER_REPORT_NOT_REQUESTED: (
        "该考生未申请纸质成绩报告单。",
        "The candidate did not ask for a paper report.",
    ),
    ErrorCode.PAPER_REPORT_COLLECTED: (
        "该纸质成绩报告单已领取。",
        "This paper report has already been collected.",
    ),
    ErrorCode.PAPER_REPORT_FORFEITED: (
        "超过半年未领取，视为自动放弃，不再补发。",
        "Not collected within six months: the paper report is forfeited and not re-issued.",
    ),
    ErrorCode.VERIFICATION_CLOSED: (
        "不在分数核查申请时间内。",
        "Score checks cannot be requested now.",
    ),
    ErrorCode.VERIFICATION_EXISTS: (
        "该成绩已申请过分数核查。",
        "A score check was already requested for this score.",
    ),
    ErrorCode.VERIFICATION_WRITTEN_ONLY: (
        "分数核查仅限笔试成绩。",
        "Score checks are for written scores only.",
    ),
    ErrorCode.VERIFICATION_ALREADY_RESOLVED: (
        "该分数核查已处理。",
        "This score check has already been resolved.",
    ),
    ErrorCode.CORRECTION_REQUIRED: (
        "更正成绩须填写与原成绩不同的听力、阅读、写作和翻译分数。",
        "A correction needs listening, reading and writing-and-translation scores that differ "
        "from the current ones.",
    ),
    ErrorCode.MISSING_GLYPH: (
        "以下字符无法打印（字库中没有该字），请联系考试管理部门处理：",
        "These characters cannot be printed (no font has them); contact the exam office:",
    ),
    ErrorCode.ROOM_NUMBER_INVALID: (
        "考场号须为 1 至 999 之间的整数（口试考场为 1 至 99）。",
        "A room number is a whole number from 1 to 999 (1 to 99 for an oral centre).",
    ),
    ErrorCode.ROOM_CAPACITY_INVALID: (
        "考场座位数须为 1 至 99 之间的整数。",
        "A room seats a whole number of candidates from 1 to 99.",
    ),
    ErrorCode.DUPLICATE_ROOM: ("考场号重复。", "The same room number appears twice."),
    ErrorCode.ROOM_IN_USE: (
        "该考场已编排考生，不能删除或减少到已用座位以下。",
        "Candidates are seated in this room: it cannot be removed or shrunk below the seats "
        "in use.",
    ),
    ErrorCode.SCHOOL_TICKETS_WRITTEN_ONLY: (
        "学校只安排笔试考场和准考证；口试考场和准考证打印时间由省级承办机构安排。",
        "A school arranges written rooms and tickets only; oral rooms and the oral ticket "
        "printing time are the province's.",
    ),
    ErrorCode.REGISTRATION_STILL_OPEN: (
        "报名尚未结束，报名结束后才能编排考场。",
        "Registration is still open; rooms are allocated once it has closed.",
    ),
    ErrorCode.PAYMENTS_PENDING: (
        "仍有考生的报名在缴费期限内尚未缴费，请在缴费期限过后再编排考场（括号内为人数）。",
        "Some choices are still within their payment period; allocate once it has passed "
        "(count in brackets).",
    ),
    ErrorCode.NOT_ENOUGH_SEATS: (
        "考场座位不足，请增加考场或座位：",
        "The rooms have too few seats; add rooms or seats:",
    ),
    ErrorCode.SEED_INVALID: (
        "随机种子须为 1 至 64 位字母、数字、“-”或“_”。",
        "A seed is 1 to 64 letters, digits, '-' or '_'.",
    ),
    ErrorCode.NOT_ALLOCATED: (
        "尚未编排考场，不能发布准考证。",
        "Rooms have not been allocated yet: there are no tickets to publish.",
    ),
    ErrorCode.NOTHING_TO_PRINT: (
        "没有可打印的已发布准考证。",
        "There are no published tickets to print.",
    ),
}


def message_for(code: ErrorCode, language: str = "zh") -> str:
    zh, en = _MESSAGES[code]
    return en if language == "en" else zh


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: a code, the input path it concerns, and detail text."""

    code: ErrorCode
    field: tuple[str, ...] | None = None
    detail: str | None = None  # appended to the standard message, e.g. a line number
    retry_after: int | None = None  # seconds, for RATE_LIMITED-like codes


class DomainError(Exception):
    """A business failure the caller can act on; carries one or more :class:`Problem`."""

    def __init__(self, problems: Problem | Sequence[Problem]) -> None:
        self.problems: tuple[Problem, ...] = (
            (problems,) if isinstance(problems, Problem) else tuple(problems)
        )
        super().__init__(", ".join(p.code.value for p in self.problems))

    @classmethod
    def of(
        cls,
        code: ErrorCode,
        *field: str,
        detail: str | None = None,
        retry_after: int | None = None,
    ) -> DomainError:
        return cls(Problem(code, tuple(field) or None, detail, retry_after))


assert set(_MESSAGES) == set(ErrorCode), "every error code needs its messages"
