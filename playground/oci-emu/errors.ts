// OCI's error answer: an HTTP status plus `{"code","message"}` with the codes of the reference's §4
// table. Handlers throw ApiError; the dispatcher turns it into the reply.

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** The code a fault of that status carries when none is given (the SDK retries 409 only as IncorrectState). */
export function defaultCodeFor(status: number): string {
  switch (status) {
    case 400:
      return 'InvalidParameter';
    case 401:
      return 'NotAuthenticated';
    case 404:
      return 'NotAuthorizedOrNotFound';
    case 409:
      return 'IncorrectState';
    case 412:
      return 'NoEtagMatch';
    case 429:
      return 'TooManyRequests';
    case 503:
      return 'ServiceUnavailable';
    default:
      return 'InternalServerError';
  }
}

export const invalid = (message: string): ApiError => new ApiError(400, 'InvalidParameter', message);
export const missing = (message: string): ApiError => new ApiError(400, 'MissingParameter', message);
export const cannotParse = (message: string): ApiError => new ApiError(400, 'CannotParseRequest', message);
export const notAuthenticated = (message: string): ApiError => new ApiError(401, 'NotAuthenticated', message);
export const notFound = (message: string): ApiError => new ApiError(404, 'NotAuthorizedOrNotFound', message);
export const incorrectState = (message: string): ApiError => new ApiError(409, 'IncorrectState', message);
export const noEtagMatch = (message: string): ApiError => new ApiError(412, 'NoEtagMatch', message);
