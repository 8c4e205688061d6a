export { createFollowers } from './follower.js'
export type { Follower, Followers, FollowersInit } from './follower.js'
