export { createFollowers } from './follower.js'
export type { Follower, Followers, FollowersComponents, FollowersInit } from './follower.js'
export { DuplicateFollowerError } from './errors.js'
