import { NekoError } from '../../protocol/errors.js'

/** No route, or no such tag: 404. */
export class NotFoundError extends NekoError {
  override name = 'NotFoundError'
  override readonly code = 'ERR_NOT_FOUND'
}

/** The API is read-only: anything but GET, HEAD and OPTIONS is 405. */
export class MethodNotAllowedError extends NekoError {
  override name = 'MethodNotAllowedError'
  override readonly code = 'ERR_METHOD_NOT_ALLOWED'
  constructor (readonly method: string) {
    super(`method ${method} is not allowed; this API is read-only (GET, HEAD, OPTIONS)`)
  }
}

/** The request line is longer than the server accepts: 414. */
export class UriTooLongError extends NekoError {
  override name = 'UriTooLongError'
  override readonly code = 'ERR_URI_TOO_LONG'
  constructor (readonly limit: number, readonly actual: number) {
    super(`request URL of ${actual} characters exceeds the limit of ${limit}`)
  }
}
