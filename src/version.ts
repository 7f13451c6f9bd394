/** The version of the mport packages; a test keeps it equal to every package.json's version. */
export const VERSION = '0.1.0'
