export { createWork, reuseBase, type KnownBuilder, type Work, type WorkComponents, type WorkInit, type WorkPlan } from './service.js'
export { createNoticeBook, type LapsedTaker, type NoticeBook, type NoticeBookInit, type NoticeCheck } from './notices.js'
export { askOrder, buildsPerTarget, chooseWork, decide, expectedOn, EMULATION_FACTOR, mustGiveWay, rankCandidates, rendezvousScore, workOrder, type Candidate, type Decision, type TargetState, type WorkView } from './select.js'
export { noticesTopic } from './topic.js'
