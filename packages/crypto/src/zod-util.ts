export { formatFieldPath as zodIssuePath } from '@forgeone/common';
