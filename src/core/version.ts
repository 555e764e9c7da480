/** The package version (package.json's), also the module's MODULE_VERSION. */
export const VERSION = '0.1.0';
